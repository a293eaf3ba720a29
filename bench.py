"""
Is SWAN cheaper? Training throughput, KV-cache memory and decoding speed of gpt against swan
and swat at one size: 12 layers x 768 wide x 12 heads, window 512 as in the paper, vocab 8192.

    python bench.py                                   # the README table (an H100: about 2 minutes)
    python bench.py --archs=gpt,swan --train_lengths=8192 --contexts=32768 --batches=8
    python bench.py --cpu_smoke                       # a tiny version on the CPU (the tests run it)
    python bench.py --decode_backend=triton           # decoding through the Triton kernels (GPT.set_decode_backend)
    python bench.py --compile_decode                  # the decoding step compiled, then captured
    python bench.py --compile_decode --compile_decode_mode=max-autotune-no-cudagraphs   # Inductor tunes its matmuls
    python bench.py --archs=gpt,swan --contexts=1024 --prefill_rounds=50   # prefill only, the archs taking turns

1. Training: optimizer steps (forward, backward, fused AdamW) of train_tokens tokens each
   (batch = train_tokens / T), bf16 autocast over fp32 weights as train.py trains, each block
   compiled with torch.compile (one graph per kind of layer, static shapes). Reported: tokens/s
   over train_steps steps after warm-up, and the peak GPU memory.
2. Generation, bf16 weights: a prompt of C tokens through the model at once into a static-shape
   KV cache (prefill tokens/s, the median of PREFILL_TIMES timed passes; single passes before
   that change), then decode_steps one-token steps of greedy decoding, each step a replayed CUDA
   graph (decode tokens/s = batch x steps / time), and the cache's bytes.
   Beside each decode figure, the step's floor: the bytes a step must read (the bf16 weights
   once, and the keys and values its layers attend: every position in a global layer, W in a
   window layer) over the GPU's copy bandwidth measured in the same run, and the step's time in
   multiples of it.

3. With --prefill_rounds=R, prefill only: for each context and batch the archs take turns, one
   prefill each per round, for R rounds after an untimed one. A 1k prefill takes a few ms, most
   of them the host launching kernels, and a slow spell of the host then moves one timing by up
   to 2x; taking turns puts every arch in the same spells. Reported: each arch's median tokens/s
   and the median over the rounds of its speed relative to the first arch's (the first's time
   over its own: prefill_x_first, above 1 when faster).

Every number of one run is measured in that run, side by side; the table gives each arch's
ratio to gpt. Writes OUT.csv (every number, with the GPU and versions; by default
bench_out/bench.csv, which git ignores) after every measurement and prints the tables; Ctrl-C
stops it with what was measured so far kept (exit code 130).
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from common import (autocast_for, check_out, check_positive, parse_list, parse_settings, pick_device, progress,
                    write_csv)
from model import ARCHS, GPT, GPTConfig, KVCache


# a 1k-context prefill takes a few ms, and one timing of it moved by up to 20% between runs
PREFILL_TIMES = 5  # timed prefills per context; the median counts
COLUMNS = ["part", "arch", "length", "batch", "train_tok_s", "peak_mem_gb", "prefill_tok_s", "decode_tok_s", "kv_bytes",
           "decode_step_ms", "decode_backend", "decode_compiled", "floor_ms", "floor_x", "prefill_x_first", "rounds",
           "copy_gb_s", "device", "torch", "triton"]  # OUT.csv; decode_compiled: False or the compile mode


@dataclass
class BenchConfig:
    archs: str = "gpt,swan,swat"
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    window: int = 512
    vocab_size: int = 8192
    train_lengths: str = "1024,4096,8192,16384"
    train_tokens: int = 32768  # tokens per optimizer step, at every length
    train_steps: int = 10  # timed, after warmup_steps
    warmup_steps: int = 3  # the first compiles
    contexts: str = "1024,4096,16384,32768"
    batches: str = "1,8"
    decode_steps: int = 64  # timed, after as many untimed ones as warm-up
    compile: bool = True
    cuda_graph: bool = True
    compile_decode: bool = False  # torch.compile the decoding step (GPT.decoder) before it is captured
    compile_decode_mode: str = "default"  # its torch.compile mode: default or max-autotune-no-cudagraphs
    prefill_rounds: int = 0  # > 0: prefill only, the archs taking turns for this many rounds (3. above)
    decode_backend: str = "torch"  # the decoding steps' kernels (GPT.set_decode_backend): "torch" or "triton"
    device: str = "auto"
    out: str = "bench_out/bench"  # writes OUT.csv
    cpu_smoke: bool = False  # a tiny model on the CPU with the settings below; a test of the script


SMOKE = dict(n_layer=4, n_head=2, n_embd=64, window=16, vocab_size=256, train_lengths="64,96", train_tokens=192,
             train_steps=2, warmup_steps=1, contexts="48,100", batches="1,3", decode_steps=3, compile=False,
             cuda_graph=False, device="cpu")


def parse_args(argv):
    settings = parse_settings(argv, BenchConfig, doc=__doc__, presets=False)
    if settings.get("cpu_smoke"):
        settings = {**SMOKE, **settings}  # what is given on the command line still wins
    cfg = BenchConfig(**settings)
    archs = cfg.archs.split(",")
    if any(a not in ARCHS for a in archs):
        raise SystemExit(f"error: --archs={cfg.archs!r}: each must be one of {', '.join(ARCHS)}")
    check_positive(cfg, "train_tokens", "train_steps", "decode_steps")
    if cfg.prefill_rounds < 0:
        raise SystemExit(f"error: --prefill_rounds={cfg.prefill_rounds} must be >= 0 (0: the full benchmark)")
    if cfg.decode_backend not in ("torch", "triton"):
        raise SystemExit(f"error: --decode_backend={cfg.decode_backend!r}: must be 'torch' or 'triton'")
    modes = ("default", "max-autotune-no-cudagraphs")  # the others capture CUDA graphs of their own, as the step is
    if cfg.compile_decode_mode not in modes:
        raise SystemExit(f"error: --compile_decode_mode={cfg.compile_decode_mode!r}: must be one of {', '.join(modes)}")
    if cfg.compile_decode_mode != "default" and not cfg.compile_decode:
        raise SystemExit(f"error: --compile_decode_mode={cfg.compile_decode_mode} compiles nothing without --compile_decode")
    lists = {key: parse_list(key, getattr(cfg, key)) for key in ("train_lengths", "contexts", "batches")}
    device = pick_device(cfg.device)
    if device != "cuda" and not cfg.cpu_smoke:
        raise SystemExit("error: bench.py is the GPU benchmark (12 x 768 models, 32k contexts) and there is no GPU "
                         "here; --cpu_smoke runs a tiny version on the CPU")
    if device != "cuda" and cfg.decode_backend == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("error: --decode_backend=triton needs a GPU, or TRITON_INTERPRET=1 on the CPU")
    check_out(cfg.out)
    return cfg, archs, lists, device


def model_config(cfg, arch, block_size):
    try:
        return GPTConfig.from_arch(arch, vocab_size=cfg.vocab_size, block_size=block_size, n_layer=cfg.n_layer,
                                   n_head=cfg.n_head, n_embd=cfg.n_embd, window=cfg.window)
    except ValueError as e:
        raise SystemExit(f"error: {e}")


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def fresh_start(device):  # each measurement on its own: no compiled graphs or cached blocks kept
    torch._dynamo.reset()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def bench_train(cfg, arch, T, device):
    fresh_start(device)
    torch.manual_seed(0)
    model = GPT(model_config(cfg, arch, T)).to(device)
    if cfg.compile:  # per block: the same fused kernels in every layer, a fraction of the compile time
        for block in model.transformer.h:
            block.compile(dynamic=False)
    model.rope_for(T, device)
    optimizer = model.configure_optimizers(0.1, 1e-4, (0.9, 0.95), device)
    B = max(1, cfg.train_tokens // T)
    data = torch.randint(cfg.vocab_size, (B, T + 1), device=device)
    autocast = autocast_for(device)

    def step():
        with autocast:
            _, loss = model(data[:, :-1], data[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(cfg.warmup_steps):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(cfg.train_steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")  # not tracked on CPU
    return dict(train_tok_s=B * T * cfg.train_steps / seconds, batch=B, peak_mem_gb=peak)


def copy_bandwidth(device):
    """Bytes per second this device moves in a plain copy (each byte read once and written once),
    measured now: the yardstick of a decoding step, which mostly reads memory."""
    n = (1 << 28) if device == "cuda" else (1 << 22)  # 512 MB of bf16 on a GPU, far beyond its caches
    src = torch.ones(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(50):  # 50 GB through an H100's memory: about 20 ms
        dst.copy_(src)
    sync(device)
    return 2 * src.nbytes * 50 / (time.perf_counter() - t0)


def step_bytes(model, B, pos):
    """The bytes one decoding step at position pos must read: every weight once (the tied
    embedding is one tensor) and the keys and values each layer attends, its own included (pos + 1
    of them in a global layer, at most W in a window layer). A floor: the static cache's global
    layers hold C + 2 x decode_steps slots, and the torch decoding path reads the empty ones too
    (the Triton path's loads skip them)."""
    config, itemsize = model.config, next(model.parameters()).element_size()
    weights = sum(p.numel() for p in model.parameters()) * itemsize
    seen = [min(config.window, pos + 1) if config.layer_kind(layer) == "S" else pos + 1 for layer in range(config.n_layer)]
    kv = 2 * B * config.kv_heads * config.head_dim * itemsize * sum(seen)  # keys and values
    return weights + kv


def timed_prefill(model, prompt, max_len, device):
    """(seconds, logits, cache): one prefill of prompt (B, C) into a fresh cache of max_len slots,
    timed from the cache's allocation being done to the GPU being done."""
    cache = KVCache(model.config, prompt.shape[0], max_len, device)
    sync(device)
    t0 = time.perf_counter()
    logits, _ = model(prompt, cache=cache)
    sync(device)
    return time.perf_counter() - t0, logits, cache


@torch.no_grad()
def bench_generate(cfg, arch, model, C, B, device, bandwidth):
    fresh_start(device)
    prompt = torch.randint(cfg.vocab_size, (B, C), device=device)
    times = []
    for _ in range(1 + PREFILL_TIMES):  # the first prefill also builds the kernels; the others are timed
        cache = None  # freed before the next is allocated
        seconds, logits, cache = timed_prefill(model, prompt, C + 2 * cfg.decode_steps, device)
        times.append(seconds)
    step = model.decoder(cache, cuda_graph=cfg.cuda_graph and device == "cuda", compile_step=cfg.compile_decode,
                         compile_mode=cfg.compile_decode_mode)
    token = logits.argmax(-1)  # (B, 1): greedy, so every arch decodes the same kind of work
    for _ in range(2):  # untimed warm-up steps, then the timed ones
        sync(device)
        t0 = time.perf_counter()
        for _ in range(cfg.decode_steps):
            token = step(token).argmax(-1)
        sync(device)
    decode_s = time.perf_counter() - t0
    floor_ms = 1e3 * step_bytes(model, B, C + 3 * cfg.decode_steps // 2) / bandwidth  # the timed steps' middle
    step_ms = 1e3 * decode_s / cfg.decode_steps
    return dict(prefill_tok_s=B * C / float(np.median(times[1:])), decode_tok_s=B * cfg.decode_steps / decode_s,
                kv_bytes=cache.nbytes(), batch=B, decode_step_ms=step_ms, floor_ms=floor_ms, floor_x=step_ms / floor_ms)


@torch.no_grad()
def bench_prefill_rounds(cfg, archs, models, C, B, device):
    """One row per arch: its median prefill tokens/s at context C and batch B over cfg.prefill_rounds
    rounds in which the archs take turns, and the median over the rounds of the first arch's time
    over its own (its speed relative to the first's)."""
    prompt = torch.randint(cfg.vocab_size, (B, C), device=device)
    seconds = {a: [] for a in archs}
    for _ in range(1 + cfg.prefill_rounds):  # the first round builds the kernels and is not counted
        for a in archs:
            seconds[a].append(timed_prefill(models[a], prompt, C, device)[0])  # its cache freed on return
    first = np.array(seconds[archs[0]][1:])
    return [dict(arch=a, prefill_tok_s=B * C / float(np.median(seconds[a][1:])), batch=B, rounds=cfg.prefill_rounds,
                 prefill_x_first=float(np.median(first / np.array(seconds[a][1:])))) for a in archs]


def versions(device):
    gpu = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    return dict(device=gpu, torch=torch.__version__, triton=triton_version)


def main(argv):
    cfg, archs, lists, device = parse_args(argv)
    env = versions(device)
    env["copy_gb_s"] = copy_bandwidth(device) / 1e9
    print(f"{env['device']}, torch {env['torch']}, triton {env['triton']}; {cfg.n_layer} layers x {cfg.n_embd} wide x "
          f"{cfg.n_head} heads, window {cfg.window}, vocab {cfg.vocab_size}; copy bandwidth {env['copy_gb_s']:,.0f} GB/s; "
          f"decoding kernels: {cfg.decode_backend}")
    # generation first: it needs no compiling, so its numbers come quickly
    jobs = [("generate", a, C, B) for C in lists["contexts"] for B in lists["batches"] for a in archs]
    jobs += [("train", a, T, None) for T in lists["train_lengths"] for a in archs]
    if cfg.prefill_rounds:
        jobs = [("prefill", ",".join(archs), C, B) for C in lists["contexts"] for B in lists["batches"]]
    rows = []
    try:
        measure(jobs, rows, cfg, lists, device, env)
    except KeyboardInterrupt:  # the rows measured so far are in the CSV already
        kept = f"{cfg.out}.csv keeps the {len(rows)} measured" if rows else "nothing was measured"
        print(f"interrupted: stopped after {len(rows)} of {len(jobs)} measurements; {kept}", file=sys.stderr)
        raise SystemExit(130)
    print_tables(rows, archs)
    print(f"\nwrote {cfg.out}.csv")
    return rows


def measure(jobs, rows, cfg, lists, device, env):
    """Each job into rows, and rows into OUT.csv after every one: a stopped benchmark keeps them."""
    models = {}
    with progress(iterable=jobs, unit="run") as bar:
        for part, arch, T, B in bar:
            bar.set_description(f"{part} {arch} T={T}" + (f" batch={B}" if B else ""), refresh=False)
            if part == "train":
                models.clear()  # the generation models would count in the training peak memory
                results = [bench_train(cfg, arch, T, device)]
            else:
                for a in arch.split(","):
                    if a not in models:  # one bf16 copy per arch, built once (CPU: fp32)
                        torch.manual_seed(0)
                        dtype = torch.bfloat16 if device == "cuda" else torch.float32
                        model = GPT(model_config(cfg, a, max(lists["contexts"]))).to(device, dtype).eval()
                        models[a] = model.set_decode_backend(cfg.decode_backend)
                if part == "prefill":
                    results = bench_prefill_rounds(cfg, arch.split(","), models, T, B, device)
                else:
                    results = [bench_generate(cfg, arch, models[arch], T, B, device, env["copy_gb_s"] * 1e9)]
            decoded = {}
            if part == "generate":  # decode_compiled: False, or the compile mode
                decoded = dict(decode_backend=cfg.decode_backend, decode_compiled=cfg.compile_decode and cfg.compile_decode_mode)
            for result in results:
                result = {"arch": arch, **result}  # a prefill row names its own arch
                rows.append(dict(part=part, length=T, **result, **decoded, **env))
                tqdm.write(f"{part} {result.pop('arch')} {T}: " + ", ".join(f"{k} {v:,.3g}" for k, v in result.items()))
            write_csv(rows, cfg.out + ".csv", COLUMNS)


def print_tables(rows, archs):
    def find(part, arch, length, batch=None):
        return next(r for r in rows if (r["part"], r["arch"], r["length"]) == (part, arch, length)
                    and (batch is None or r["batch"] == batch))

    def cell(value, base, fmt):  # the value and its ratio to gpt's
        return fmt.format(value) + (f" ({value / base:.2f}x)" if "gpt" in archs and base else "")

    gpt = "gpt" if "gpt" in archs else archs[0]
    lengths = sorted({r["length"] for r in rows if r["part"] == "train"})
    if lengths:
        print("\ntraining: tokens/s (ratio to gpt), peak memory\n")
        print("| T | batch | " + " | ".join(archs) + " |")
        print("| ---: | ---: |" + " ---: |" * len(archs))
        for T in lengths:
            base = find("train", gpt, T)["train_tok_s"]
            peak = {a: find("train", a, T)["peak_mem_gb"] for a in archs}
            cells = [cell(find("train", a, T)["train_tok_s"], base, "{:,.0f}") +
                     (f", {peak[a]:.1f} GB" if peak[a] == peak[a] else ", peak n/a") for a in archs]
            print(f"| {T} | {find('train', gpt, T)['batch']} | " + " | ".join(cells) + " |")
    prefills = sorted({(r["length"], r["batch"]) for r in rows if r["part"] == "prefill"})
    if prefills:
        print(f"\nprefill, the archs taking turns: median tokens/s (median of the per-round ratio to {archs[0]})\n")
        print("| context | batch | rounds | " + " | ".join(archs) + " |")
        print("| ---: | ---: | ---: |" + " ---: |" * len(archs))
        for C, B in prefills:
            found = [find("prefill", a, C, B) for a in archs]
            print(f"| {C} | {B} | {found[0]['rounds']} | " +
                  " | ".join(f"{r['prefill_tok_s']:,.0f} ({r['prefill_x_first']:.2f}x)" for r in found) + " |")
    contexts = sorted({(r["length"], r["batch"]) for r in rows if r["part"] == "generate"})
    if contexts:
        print("\ngeneration: prefill tokens/s, decode tokens/s and KV-cache MB (sized for the context plus the "
              "2 x decode_steps decoded tokens), each with its ratio to gpt; [a step's time in multiples of its "
              "bandwidth floor]\n")
        print("| context | batch | " + " | ".join(f"{a} prefill | {a} decode | {a} KV MB" for a in archs) + " |")
        print("| ---: | ---: |" + " ---: | ---: | ---: |" * len(archs))
        for C, B in contexts:
            base = find("generate", gpt, C, B)
            cells = []
            for a in archs:
                r = find("generate", a, C, B)
                cells += [cell(r["prefill_tok_s"], base["prefill_tok_s"], "{:,.0f}"),
                          cell(r["decode_tok_s"], base["decode_tok_s"], "{:,.0f}") + f" [{r['floor_x']:.1f}x floor]",
                          cell(r["kv_bytes"] / 1e6, base["kv_bytes"] / 1e6, "{:,.1f}")]
            print(f"| {C} | {B} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
