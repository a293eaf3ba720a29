# Kept as the record of a run (python3 results/logs/bench/atomic_dq/atomic_probe.py on one H100; its
# printout is atomic_probe.log). How fast can a dK/dV pass add its dQ tiles atomically? A kernel
# that does only that, on the grid and band of the backward (one program per key block, a loop over
# the query blocks that see it), and the same traffic as plain stores, timed for shapes 1, 4 and 5
# of the kernel benchmark.
import torch
import triton
import triton.language as tl


@triton.jit
def _adds(DQ, T, W, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    n0, bh = tl.program_id(0) * BN, tl.program_id(1)
    DQ += bh.to(tl.int64) * T * D
    offs_d = tl.arange(0, D)
    tile = tl.full([BM, D], 1.0, dtype=tl.float32)
    lo = n0 // BM * BM
    hi = tl.minimum(n0 + BN - 1 + W, T)
    for r0 in range(lo, hi, BM):
        offs_r = r0 + tl.arange(0, BM)
        tl.atomic_add(DQ + offs_r[:, None] * D + offs_d[None, :], tile, mask=offs_r[:, None] < T, sem="relaxed")


@triton.jit
def _stores(DQ, T, W, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    # the same traffic as plain stores, for scale
    n0, bh = tl.program_id(0) * BN, tl.program_id(1)
    DQ += bh.to(tl.int64) * T * D
    offs_d = tl.arange(0, D)
    tile = tl.full([BM, D], 1.0, dtype=tl.float32)
    lo = n0 // BM * BM
    hi = tl.minimum(n0 + BN - 1 + W, T)
    for r0 in range(lo, hi, BM):
        offs_r = r0 + tl.arange(0, BM)
        tl.store(DQ + offs_r[:, None] * D + offs_d[None, :], tile, mask=offs_r[:, None] < T)


print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
for B, H, T, D, W in ((8, 12, 4096, 64, 512), (8, 16, 4096, 128, 512), (2, 16, 16384, 128, 1024)):
    dq = torch.zeros(B * H, T, D, device="cuda", dtype=torch.float32)
    for BM, BN, warps in ((32, 64, 4), (64, 64, 4), (64, 128, 8), (128, 128, 8)):
        grid = (triton.cdiv(T, BN), B * H)
        n_add = sum(min(n0 + BN - 1 + W, T) - n0 // BM * BM for n0 in range(0, T, BN)) * B * H * D
        for name, kern in (("atomic", _adds), ("store", _stores)):
            ms = triton.testing.do_bench(lambda: kern[grid](dq, T, W, D=D, BM=BM, BN=BN, num_warps=warps), warmup=100, rep=300)
            print(f"{(B, H, T, D, W)} BM={BM} BN={BN} warps={warps} {name}: {ms * 1e3:.1f} us, "
                  f"{n_add / 1e6:.0f}M adds, {n_add * 4 / ms / 1e9:.2f} TB/s", flush=True)
