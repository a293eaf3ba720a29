"""Versions of attention_triton.py side by side on one GPU: the logs of this folder.

    git show 9ea3087:attention_triton.py > old_attention_triton.py     # three loops per pass
    python results/logs/bench/one_loop/compare_kernels.py errors old=old_attention_triton.py new=attention_triton.py
    python results/logs/bench/one_loop/compare_kernels.py time old=old_attention_triton.py new=attention_triton.py
    python results/logs/bench/one_loop/compare_kernels.py tiles new=attention_triton.py [sigmoid_alibi]

Run from the repository root. Each file is loaded as its own module (its custom ops renamed, so
several can live in one process). Times are per launch in a CUDA graph of 10 launches (no host
cost, no L2 flush), the versions taking turns for 3 rounds, median; `tiles` times each pass alone
(forward, dQ, dK/dV) for candidate (BM, BN, warps, stages). Errors are the largest relative
error of out, dq, dk, dv in bf16 against the PyTorch path in float64.
"""
import statistics
import sys
import types

import torch
import triton

sys.path.insert(0, ".")
from attention import _attention_torch  # noqa: E402

LOG2E = 1.4426950408889634
SHAPES = [(8, 12, 4096, 64, 512), (2, 12, 16384, 64, 512), (1, 12, 65536, 64, 512), (8, 16, 4096, 128, 512),
          (2, 16, 16384, 128, 1024), (2, 16, 4096, 128, 1024)]
MODES = [(False, False), (True, True), (True, False), (False, True)]  # (sigmoid, alibi)


def load(name, path):
    src = open(path).read().replace("swan::", f"swan_{name}::")
    mod = types.ModuleType(name)
    exec(compile(src, path, "exec"), mod.__dict__)
    # the kernels' ALiBi slopes: base 2 in every version so far (times log2(e))
    return mod


def slopes(H, alibi):
    return torch.tensor([(-1) ** h * 2.0 ** -(h // 2 + 1) for h in range(H)], device="cuda") if alibi else None


def graph_ms(fn, n=10, replays=5):
    fn()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(n):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / n)
    return statistics.median(times)


def inputs(B, H, T, D, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.randn(B, H, T, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(4)]


def passes(mod, q, k, v, do, W, sigmoid, alibi):
    """The forward launch, the whole backward, and the backward's two launches alone."""
    B, H, T, D = q.shape
    scale = D ** -0.5
    sl = slopes(H, alibi)
    sl = None if sl is None else (sl * LOG2E).contiguous()
    o, lse = mod._fwd(q, k, v, sl, W, sigmoid, scale)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    delta = torch.empty_like(lse)
    flags = dict(D=D, HAS_ALIBI=alibi, SIGMOID=sigmoid)
    slope_ptr = lse if sl is None else sl

    def dq_pass():
        cfg = mod._config("dq", q.dtype)
        mod._attn_bwd_dq[(triton.cdiv(T, cfg["BM"]), B * H)](
            q, k, v, o, do, dq, lse, delta, slope_ptr, *mod._strides(q, k, v, o, do, dq), H, 1, T, T, W,
            scale * LOG2E, scale, **flags, **cfg)

    def dkdv_pass():
        cfg = mod._config("dkdv", q.dtype)
        mod._attn_bwd_dkdv[(triton.cdiv(T, cfg["BN"]), B * H)](
            q, k, v, do, dk, dv, lse, delta, slope_ptr, *mod._strides(q, k, v, do, dk, dv), H, 1, T, T, W,
            scale * LOG2E, scale, **flags, **cfg)
    dq_pass()  # delta for the dK/dV pass
    return {"fwd": lambda: mod._fwd(q, k, v, sl, W, sigmoid, scale),
            "bwd": lambda: mod._bwd_op(do, q, k, v, o, lse, sl, W, sigmoid, scale),
            "dq": dq_pass, "dkdv": dkdv_pass}


def mode_name(sigmoid, alibi):
    return ("sigmoid" if sigmoid else "softmax") + ("+alibi" if alibi else "")


def errors(mods):
    print("errors against float64 (max over out, dq, dk, dv of |x - ref| / |ref|)")
    for B, H, T, D, W in [(2, 4, 1000, 64, 129), (2, 4, 1000, 128, 129), (1, 4, 700, 64, 700)]:
        q, k, v, do = inputs(B, H, T, D, seed=1)
        for sigmoid, alibi in MODES:
            kind = "sigmoid" if sigmoid else "softmax"
            sl = slopes(H, alibi)
            q64, k64, v64 = (t.double().requires_grad_() for t in (q, k, v))
            ref = _attention_torch(q64, k64, v64, W, kind, None if sl is None else sl.double(), D ** -0.5)
            refs = [ref, *torch.autograd.grad(ref, (q64, k64, v64), do.double())]
            cells = []
            for name, mod in mods.items():
                qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
                out = mod.window_attention_triton(qq, kk, vv, W, kind, sl, D ** -0.5)
                got = [out, *torch.autograd.grad(out, (qq, kk, vv), do)]
                cells.append(f"{name} {max(((a.double() - b).norm() / b.norm()).item() for a, b in zip(got, refs)):.2e}")
            print(f"  {(B, H, T, D, W)} {mode_name(sigmoid, alibi)}: " + "  ".join(cells), flush=True)


def time_versions(mods, rounds=3):
    print("ms per launch (CUDA graph, median of rounds); forward TFLOP/s on window FLOPs")
    for B, H, T, D, W in SHAPES:
        flops = 4 * D * B * H * (W * (W + 1) // 2 + (T - W) * W)
        q, k, v, do = inputs(B, H, T, D)
        for sigmoid, alibi in MODES:
            fns = {n: passes(m, q, k, v, do, W, sigmoid, alibi) for n, m in mods.items()}
            res = {n: {"fwd": [], "bwd": []} for n in mods}
            for _ in range(rounds):
                for n, f in fns.items():
                    for p in ("fwd", "bwd"):
                        res[n][p].append(graph_ms(f[p]))
            cells = []
            for n in mods:
                f, b = statistics.median(res[n]["fwd"]), statistics.median(res[n]["bwd"])
                cells.append(f"{n} fwd {f:.3f} ({flops / f / 1e9:.0f}) bwd {b:.3f} tot {f + b:.3f}")
            print(f"{str((B, H, T, D, W)):<24} {mode_name(sigmoid, alibi):<13} " + " | ".join(cells), flush=True)
        torch.cuda.empty_cache()


TILES = {
    "fwd": [(64, 64, 4, 3), (64, 64, 8, 3), (128, 64, 8, 3), (64, 32, 4, 3)],
    "dq": [(64, 32, 4, 3), (64, 32, 4, 2), (128, 32, 8, 3), (64, 64, 8, 3), (128, 64, 8, 2)],
    "dkdv": [(32, 64, 4, 2), (32, 128, 8, 2), (32, 64, 8, 2), (16, 64, 4, 2), (16, 128, 8, 2), (64, 128, 8, 2)],
}


def tiles(mod, sigmoid, alibi, rounds=3):
    print(f"each pass alone, {mode_name(sigmoid, alibi)}: ms per launch for (BM, BN, warps, stages)")
    base = dict(mod._CONFIGS)
    for B, H, T, D, W in SHAPES[:2] + SHAPES[3:5]:
        q, k, v, do = inputs(B, H, T, D)
        for pass_, cands in TILES.items():
            res = {c: [] for c in cands}
            for _ in range(rounds):
                for c in cands:
                    mod._CONFIGS = {**base, pass_: c}
                    res[c].append(graph_ms(passes(mod, q, k, v, do, W, sigmoid, alibi)[pass_]))
            mod._CONFIGS = base
            print(f"{str((B, H, T, D, W)):<24} {pass_:<5} "
                  + "; ".join(f"{c}: {statistics.median(r):.3f}" for c, r in res.items()), flush=True)
        torch.cuda.empty_cache()


def main(argv):
    what, files, rest = argv[0], [a for a in argv[1:] if "=" in a], [a for a in argv[1:] if "=" not in a]
    mods = {name: load(name, path) for name, path in (a.split("=", 1) for a in files)}
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__)
    if what == "errors":
        errors(mods)
    elif what == "time":
        time_versions(mods)
    elif what == "tiles":
        sigmoid_alibi = rest == ["sigmoid_alibi"]
        tiles(next(iter(mods.values())), sigmoid_alibi, sigmoid_alibi)
    else:
        raise SystemExit(f"error: the first argument is errors, time or tiles, got {what!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
