# The decoding step's matmuls (linear_decode_triton) timed alone inside CUDA graphs of 24 launches,
# each on its own copy of the weights, batch 8, bf16, as Block.decode calls them (the norm split
# between products, the residual and GELU folded in), for tiles and shares of K (split-K, the last
# share to finish adding them up). Run from the repository root with PYTHONPATH=.
import torch
import triton
import linear_decode_triton as ldt
from linear_decode_triton import Normed, linear_decode_triton

torch.manual_seed(0)
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
B, C, reps = 8, 768, 24
norm = torch.nn.RMSNorm(C).cuda().bfloat16()


def graph_time(fn):
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
    for _ in range(3):
        g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(25):
        a.record(); g.replay(); b.record(); torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1e3 / reps)
    ts.sort()
    return ts[len(ts) // 2]


default_cfg = ldt._config
for name, K, N, kind in (("qkv", C, 3 * C, "normed"), ("o", C, C, "residual"), ("fc", C, 4 * C, "normed-gelu"),
                         ("proj", 4 * C, C, "residual"), ("head", C, 8192, "normed")):
    ws = [torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K ** 0.5 for _ in range(reps)]
    x = torch.randn(B, 1, K, device="cuda", dtype=torch.bfloat16)
    res = torch.randn(B, 1, N, device="cuda", dtype=torch.bfloat16)
    normed = linear_decode_triton(torch.randn(B, 1, 4 * C, device="cuda", dtype=torch.bfloat16),
                                  torch.randn(K, 4 * C, device="cuda", dtype=torch.bfloat16) / 50, residual=x,
                                  norm=torch.nn.RMSNorm(K).cuda().bfloat16())[1]
    act = "gelu" if kind.endswith("gelu") else "none"

    def fn(i):
        if kind == "residual":
            return linear_decode_triton(x, ws[i], residual=res, norm=norm)[0]
        return linear_decode_triton(normed, ws[i], activation=act)

    cands = []
    for bk in (128, 256):
        tiles = K // bk
        for shares in sorted({1, 2, 3, 4, 6, 8, 12}):
            if shares <= tiles and tiles % shares == 0:
                for warps, stages in ((2, 3), (2, 4), (4, 3)):
                    cands.append((16, bk, warps, stages, shares))
    cands.append((16, 256, 2, 4 if K >= 2048 else 3, 1))  # the current one, again
    ref, rows = None, []
    for bn, bk, warps, stages, shares in cands:
        ldt._config = lambda K_, N_, c=dict(BLOCK_M=16, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps, num_stages=stages,
                                             shares=shares): c
        out = fn(0).float()
        ref = out if ref is None else ref
        err = ((out - ref).abs().max() / ref.abs().max()).item()
        t = graph_time(fn)
        rows.append((t, bn, bk, warps, stages, shares, err))
        print(f"{name} K={K} N={N}: BLOCK_N={bn} BLOCK_K={bk} warps={warps} stages={stages} shares={shares}: "
              f"{t:.2f} us (max diff {err:.1e} of the largest)", flush=True)
    best = min(rows)
    print(f"== {name}: best {best[0]:.2f} us with BLOCK_N={best[1]} BLOCK_K={best[2]} warps={best[3]} "
          f"stages={best[4]} shares={best[5]}; current {rows[-1][0]:.2f} us", flush=True)
    ldt._config = default_cfg
