# Microbenchmark (kept as the record of one run, not part of the repository's tools): a skinny Triton matmul y = x @ W.T for x of M <= 16 rows against
# cuBLAS (F.linear), inside CUDA graphs, each launch on its own weights (24 copies: no L2 reuse).
import itertools, sys
import torch, triton, triton.language as tl
import torch.nn.functional as F


@triton.jit
def _skinny(X, W, Y, M, N, K, sxm, swn, sym, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    offs_k = tl.arange(0, BLOCK_K)
    n_ok = offs_n < N
    m_ok = offs_m < M
    acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_ok = (k0 + offs_k) < K
        w = tl.load(W + offs_n[:, None] * swn + (k0 + offs_k)[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0.0)
        x = tl.load(X + offs_m[:, None] * sxm + (k0 + offs_k)[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        acc = tl.dot(w, tl.trans(x), acc)
    tl.store(Y + offs_m[None, :] * sym + offs_n[:, None], acc.to(Y.dtype.element_ty), mask=m_ok[None, :] & n_ok[:, None])


def skinny(x, w, y, BN, BK, warps, stages):
    M, K = x.shape
    N = w.shape[0]
    _skinny[(triton.cdiv(N, BN),)](x, w, y, M, N, K, x.stride(0), w.stride(0), y.stride(0),
                                   BLOCK_M=16, BLOCK_N=BN, BLOCK_K=BK, num_warps=warps, num_stages=stages)


def graph_time(fn, reps=24):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for i in range(reps):
            fn(i)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(reps):
            fn(i)
    for _ in range(5):
        g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(20):
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    ts.sort()
    return ts[len(ts) // 2]


M = 8
shapes = [(2304, 768), (768, 768), (3072, 768), (768, 3072)]
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
for N, K in shapes:
    ws = [torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / 30 for _ in range(24)]
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    ys = [torch.empty(M, N, device="cuda", dtype=torch.bfloat16) for _ in range(24)]
    ref = F.linear(x.float(), ws[0].float())
    t_cublas = graph_time(lambda i: torch.matmul(x, ws[i].t(), out=ys[i]))
    mb = N * K * 2 / 1e6
    print(f"N={N} K={K} ({mb:.1f} MB): cuBLAS {t_cublas:.2f} us", flush=True)
    res = []
    for BN, BK, warps, stages in itertools.product((16, 32, 64), (128, 256), (2, 4), (3, 4)):
        try:
            skinny(x, ws[0], ys[0], BN, BK, warps, stages)
            err = ((ys[0].float() - ref).abs().max() / ref.abs().max()).item()
            t = graph_time(lambda i: skinny(x, ws[i], ys[i], BN, BK, warps, stages))
            res.append((t, BN, BK, warps, stages, err))
        except Exception as e:
            print("  fail", BN, BK, warps, stages, str(e)[:80])
    res.sort()
    for t, BN, BK, warps, stages, err in res[:6]:
        print(f"  triton BN={BN} BK={BK} w={warps} s={stages}: {t:.2f} us ({mb / t * 1e-3 * 1e6 / 1e3:.2f} TB/s) err {err:.1e}")
    sys.stdout.flush()
