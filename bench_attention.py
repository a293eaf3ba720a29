"""
The window kernel against FlexAttention, SDPA and the PyTorch path, on one GPU: milliseconds and
TFLOP/s forward and forward+backward, bf16, and the kernel's error against float64.

    python bench_attention.py           # the README's five shapes (an H100: about three minutes)
    python bench_attention.py --quick   # two small shapes
    python bench_attention.py --decode  # the decoding kernel alone, inside a CUDA graph

Every rate is counted on the window's FLOPs, 4 * D * sum_i min(i + 1, W) per head forward and
2.5x that backward, whatever a kernel computes; the global causal table counts causal FLOPs.
Where FlashAttention-4 is installed (the flash-attn-4 package: `flash_attn.cute`), the window table
gets a column for it too, its sliding window (window_size=(W - 1, 0)) on its own (B, T, H, D)
copies of the inputs, and our speed against it. Every contender of that table is timed in three
rounds (--rounds), the contenders taking turns, and the table shows each one's median.
"""

import statistics
import sys
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attention import _attention_torch, attention
from common import parse_settings

SHAPES = [(8, 12, 4096, 64, 512), (2, 12, 16384, 64, 512), (1, 12, 65536, 64, 512), (8, 16, 4096, 128, 512),
          (2, 16, 16384, 128, 1024)]  # (B, H, T, D, W)
QUICK_SHAPES = [(4, 12, 4096, 64, 512), (2, 16, 4096, 128, 1024)]
NAMES = ["triton", "flex", "sdpa causal", "sdpa mask", "torch", "sig+alibi"]  # the last: triton, SWAT's mode


@dataclass
class BenchAttentionConfig:
    quick: bool = False  # two small shapes instead of the five of the README
    rounds: int = 3  # the window table times every contender this often, taking turns, and shows each one's median
    decode: bool = False  # time the decoding kernel (attention_decode_triton) instead, at two split sizes (--quick does not apply)


def timed(fn, q, k, v, do):
    """(forward ms, forward+backward ms), "oom" where memory ran out."""
    from triton.testing import do_bench
    try:
        # a long warm-up: after compiles the GPU has idled and its clock must ramp up again
        fwd = do_bench(lambda: fn(q, k, v), warmup=250, return_mode="median")
        both = do_bench(lambda: torch.autograd.grad(fn(q, k, v), (q, k, v), do), warmup=250, return_mode="median")
        return fwd, both
    except torch.OutOfMemoryError:
        return "oom", "oom"
    finally:
        torch.cuda.empty_cache()


def contenders(T, W, H, flex):
    """The six functions (q, k, v) -> out of NAMES, for one shape."""
    from torch.nn.attention.flex_attention import create_block_mask
    slopes = torch.tensor([(-1) ** h * 2.0 ** -(h // 2 + 1) for h in range(H)], device="cuda")
    block_mask = create_block_mask(lambda b, h, i, j: (i - j >= 0) & (i - j < W), None, None, T, T,
                                   device="cuda", _compile=True)

    def sdpa_mask(q, k, v, mask=[]):  # the T x T mask is built once, on first use (it may not fit)
        if not mask:
            i = torch.arange(T, device="cuda")
            mask.append((i[:, None] - i[None, :] >= 0) & (i[:, None] - i[None, :] < W))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0])

    return slopes, [lambda q, k, v: attention(q, k, v, window=W, backend="triton"),
                    lambda q, k, v: flex(q, k, v, block_mask=block_mask),
                    lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    sdpa_mask,
                    lambda q, k, v: _attention_torch(q, k, v, W, "softmax", None, q.shape[-1] ** -0.5),
                    lambda q, k, v: attention(q, k, v, window=W, kind="sigmoid", alibi_slopes=slopes, backend="triton")]


def flash_attention_4():
    """FlashAttention-4's function, or None where it is not installed or does not load (its CUDA
    libraries are a separate package): the table is then printed without it."""
    try:
        from flash_attn.cute import flash_attn_func
    except Exception as e:  # noqa: BLE001: any failure to load it only drops its column
        if not isinstance(e, ImportError):
            print(f"FlashAttention-4 is installed but did not load ({type(e).__name__}: {e}); no column for it")
        return None
    return flash_attn_func


def timed_fa4(fa4, q, k, v, do, W):
    """timed() for FlashAttention-4 on (B, T, H, D) copies of the inputs, its own layout, so that
    no transposition is timed. Keys j with i - W < j <= i: window_size=(W - 1, 0)."""
    qt, kt, vt = (t.detach().transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))
    dot = do.transpose(1, 2).contiguous()

    def fn(q, k, v):
        return fa4(q, k, v, causal=True, window_size=(W - 1, 0))[0]  # it returns (out, lse)

    try:
        torch.autograd.grad(fn(qt, kt, vt), (qt, kt, vt), dot)  # its compile, before the timing
        torch.cuda.synchronize()
    except torch.OutOfMemoryError:
        return "oom", "oom"
    return timed(fn, qt, kt, vt, dot)


def kernel_errors(q, k, v, do, W, slopes):
    """Max relative error over out, dq, dk, dv of the kernel against float64 through the torch path,
    softmax and sigmoid+ALiBi."""
    errs = []
    for kind, sl in [("softmax", None), ("sigmoid", slopes)]:
        ours = attention(q, k, v, window=W, kind=kind, alibi_slopes=sl, backend="triton")
        ours = [ours, *torch.autograd.grad(ours, (q, k, v), do)]
        q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
        ref = _attention_torch(q64, k64, v64, W, kind, None if sl is None else sl.double(), q.shape[-1] ** -0.5)
        ref = [ref, *torch.autograd.grad(ref, (q64, k64, v64), do.double())]
        errs.append(max(((a.double() - b).norm() / b.norm()).item() for a, b in zip(ours, ref)))
        del ours, ref, q64, k64, v64
        torch.cuda.empty_cache()
    return errs


def random_inputs(B, H, T, D):
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v, do = (torch.randn(B, H, T, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(4))
    return (*(t.requires_grad_() for t in (q, k, v)), do)


def cell(ms, flops):
    return f"{'oom':>14}" if ms == "oom" else f"{ms:8.3f} {flops / ms / 1e9:5.0f}"


def median_time(samples):
    """The median of one contender's times over the rounds; "oom" if any round ran out of memory."""
    return "oom" if "oom" in samples else statistics.median(samples)


def spin_up(seconds=3.0):
    """Keep the GPU busy with bf16 matrix products for a few seconds before the first timing: an
    idle GPU's clock ramps up under load, and the first shape was otherwise timed slower."""
    import time
    try:
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(10):
                a @ a
            torch.cuda.synchronize()
    except torch.OutOfMemoryError:  # a GPU this full times slowly anyway: go on without
        pass
    finally:
        torch.cuda.empty_cache()


def bench_windows(shapes, flex, rounds):
    fa4 = flash_attention_4()
    names = NAMES + (["fa4"] if fa4 else [])
    print("\nms and TFLOP/s (window FLOPs). err: max over out, dq, dk, dv of |ours - ref| / |ref|, ref in float64")
    print(f"{'B,H,T,D,W':<22} {'pass':<7}" + "".join(f"{n:>15}" for n in names)
          + "  flex/ours sdpa/ours sig/soft" + (" fa4/ours" if fa4 else "") + "  err soft   err sig")
    for B, H, T, D, W in shapes:
        q, k, v, do = random_inputs(B, H, T, D)
        flops = 4 * D * B * H * (W * (W + 1) // 2 + (T - W) * W)
        slopes, fns = contenders(T, W, H, flex)
        for fn in fns:  # compile everything for this shape first: no compile workers busy while timing
            try:
                torch.autograd.grad(fn(q, k, v), (q, k, v), do)
            except torch.OutOfMemoryError:
                pass
            torch.cuda.synchronize()
        spin_up()  # the compiles above left the GPU idle
        # Rounds in which every contender takes its turn: a slow moment of the GPU (its clock, a
        # neighbour) then costs one sample of each, and the median drops it, not one ratio.
        samples = []
        for _ in range(rounds):
            samples.append([timed(fn, q, k, v, do) for fn in fns])
            if fa4:
                samples[-1].append(timed_fa4(fa4, q, k, v, do, W))
        times = [[median_time([r[i][p] for r in samples]) for p in (0, 1)] for i in range(len(samples[0]))]
        errs = kernel_errors(q, k, v, do, W, slopes)
        for p, (label, mult) in enumerate([("fwd", 1.0), ("fwd+bwd", 3.5)]):
            ts = [t[p] for t in times]
            # how many times faster ours is than flex and than dense causal SDPA; sigmoid+ALiBi's time over softmax's
            # and, with FlashAttention-4, how many times faster ours is than it
            ratios = [ts[i] / ts[0] if "oom" not in (ts[i], ts[0]) else float("nan")
                      for i in (1, 2, 5) + ((6,) if fa4 else ())]
            err = f"{errs[0]:10.1e}{errs[1]:10.1e}" if p else ""
            print(f"{str((B, H, T, D, W)).replace(' ', ''):<22} {label:<7}"
                  + "".join(f" {cell(t, flops * mult)}" for t in ts)
                  + f"{ratios[0]:11.2f}{ratios[1]:10.2f}{ratios[2]:9.2f}"
                  + (f"{ratios[3]:9.2f}" if fa4 else "") + err)


def bench_global(quick):
    """Global causal layers (what triton_applies chooses for window=None): causal FLOPs here."""
    print("\nglobal causal, ms and TFLOP/s on causal FLOPs")
    print(f"{'B,H,T,D':<22} {'pass':<7}{'triton':>15}{'sdpa causal':>15}")
    for B, H, T, D in [(8, 12, 4096, 64)] if quick else [(8, 12, 4096, 64), (2, 16, 16384, 128)]:
        q, k, v, do = random_inputs(B, H, T, D)
        flops = 2 * D * B * H * T * (T + 1)
        ours = timed(lambda q, k, v: attention(q, k, v, backend="triton"), q, k, v, do)
        sdpa = timed(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v, do)
        for p, (label, mult) in enumerate([("fwd", 1.0), ("fwd+bwd", 3.5)]):
            print(f"{str((B, H, T, D)).replace(' ', ''):<22} {label:<7} {cell(ours[p], flops * mult)}"
                  f" {cell(sdpa[p], flops * mult)}")


def graph_time_us(fn, launches=20, replays=10):
    """Microseconds per call of fn, captured `launches` times in one CUDA graph and replayed: the
    way a decoding step runs it, with no host launch cost in the figure."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # compiles and allocates outside the graph
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(launches):
            fn()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return 1e3 * start.elapsed_time(end) / (replays * launches)


def bench_decode():
    """One layer's decoding attention at batch 8, 12 heads of 64: a full window ring of 512 slots
    and global caches of 1,280 and 33,024 slots, split every 64 slots (the default) or every 512,
    one warp per program in both, and the output's error |out - ref| / |ref| against the torch path
    in float64. The same cache is read at every launch, so caches that fit in the GPU's L2 are read
    from there."""
    from attention import attention_decode
    from attention_decode_triton import attention_decode_triton
    B, H, D = 8, 12, 64
    print("\ndecoding kernel, one layer: us per call in a CUDA graph, GB/s of keys and values read, and the")
    print("output's error against float64")
    print(f"{'slots (seen)':<22}" + "".join(f"{f'split_slots={n}':>34}" for n in (64, 512)))
    for S, pos in [(512, 5000), (1280, 1100), (33024, 32800)]:
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.bfloat16, generator=g)
        k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2))
        slot = torch.arange(S, device="cuda")
        # a ring holds positions pos - 511 .. pos; a global cache slot p holds position p, seen up to pos
        key_pos = (pos - (pos - slot) % S if S == 512 else torch.where(slot <= pos, slot, -1)).int()
        query_pos = torch.tensor([pos], device="cuda", dtype=torch.int32)
        seen = int(((key_pos >= 0) & (key_pos <= pos)).sum())
        ref = attention_decode(q.double(), k.double(), v.double(), key_pos, query_pos)  # (B, H, 1, D)
        cells = []
        for split_slots in (64, 512):
            out = attention_decode_triton(q, k, v, key_pos, query_pos, split_slots=split_slots)
            err = ((out.double() - ref).norm() / ref.norm()).item()
            us = graph_time_us(lambda: attention_decode_triton(q, k, v, key_pos, query_pos, split_slots=split_slots))
            cells.append(f"{us:12.2f} {2 * B * H * seen * D * 2 / us / 1e3:8.0f} GB/s {err:8.1e}")
        print(f"{f'{S} ({seen})':<22}" + "".join(f"{c:>34}" for c in cells))


def main(argv):
    cfg = BenchAttentionConfig(**parse_settings(argv, BenchAttentionConfig, doc=__doc__, presets=False))
    if cfg.rounds < 1:
        raise SystemExit(f"error: --rounds must be at least 1, got {cfg.rounds}")
    if not torch.cuda.is_available():
        raise SystemExit("error: bench_attention.py times the Triton kernel on a CUDA GPU; none is available here")
    import triton
    from torch.nn.attention.flex_attention import flex_attention
    warnings.simplefilter("ignore")  # flex's and torch.compile's notices would split the table
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}, bf16")
    if cfg.decode:
        bench_decode()
        return
    flex = torch.compile(flex_attention)
    bench_windows(QUICK_SHAPES if cfg.quick else SHAPES, flex, cfg.rounds)
    bench_global(cfg.quick)


if __name__ == "__main__":
    main(sys.argv[1:])
