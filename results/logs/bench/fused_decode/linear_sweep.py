# Microbenchmark (kept as the record of a run): linear_decode_triton's kernel at the decoding
# step's five products (12 x 768 model, batch 8, bf16), with and without what it folds in, against
# cuBLAS, inside CUDA graphs of 24 launches, each on its own copy of the weights (no L2 reuse), and
# a sweep of tiles for each. Run from the repository root with PYTHONPATH=. As it ran in call 3,
# against the code of then: the committed linear_decode_triton no longer takes norm= (the norm fold
# it times was left out), so this script does not run on it unchanged.
import itertools
import torch
import torch.nn as nn
import torch.nn.functional as F
import triton
import linear_decode_triton as ld


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


M, C = 8, 768
print(torch.cuda.get_device_name(), torch.__version__, triton.__version__)
ln = nn.RMSNorm(C).cuda().bfloat16()
products = [("qkv + norm", 3 * C, C, True, "none", False), ("attn proj + residual", C, C, False, "none", True),
            ("fc + norm + gelu", 4 * C, C, True, "gelu", False), ("mlp proj + residual", C, 4 * C, False, "none", True),
            ("head + norm", 8192, C, True, "none", False)]
default_cfg = ld._config
for name, N, K, norm, act, res in products:
    ws = [torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / 30 for _ in range(24)]
    x = torch.randn(M, 1, K, device="cuda", dtype=torch.bfloat16)
    r = torch.randn(M, 1, N, device="cuda", dtype=torch.bfloat16)
    ys = [torch.empty(M, N, device="cuda", dtype=torch.bfloat16) for _ in range(24)]
    t_cublas = graph_time(lambda i: torch.matmul(x.view(M, K), ws[i].t(), out=ys[i]))
    kw = dict(norm=ln if norm else None, activation=act, residual=r if res else None)
    line = f"{name:22s} N={N} K={K}: cuBLAS alone {t_cublas:.2f} us"
    for label, args in (("fused", kw), ("product alone", {})):
        ld._config = default_cfg
        t = graph_time(lambda i: ld.linear_decode_triton(x, ws[i], **args))
        line += f", ours {label} {t:.2f} us"
    print(line, flush=True)
    res_ = []
    for BN, BK, warps, stages in list(itertools.product((16, 32), (128, 256), (2, 4), (3, 4))) + [(64, 128, 4, 4), (16, 512, 4, 2)]:
        ld._config = lambda K, c=dict(BLOCK_M=16, BLOCK_N=BN, BLOCK_K=BK, num_warps=warps, num_stages=stages): c
        try:
            t = graph_time(lambda i: ld.linear_decode_triton(x, ws[i], **kw))
            res_.append((t, BN, BK, warps, stages))
        except Exception as e:
            pass
    res_.sort()
    for t, BN, BK, warps, stages in res_[:4]:
        print(f"    fused BN={BN} BK={BK} warps={warps} stages={stages}: {t:.2f} us", flush=True)
ld._config = default_cfg
