# throwaway: where a 1k-context prefill's time goes, gpt against swan (bench.py's models)
import sys, time
import torch
sys.path.insert(0, ".")
from model import GPT, GPTConfig, KVCache
from torch.profiler import profile, ProfilerActivity

def build(arch):
    torch.manual_seed(0)
    cfg = GPTConfig.from_arch(arch, vocab_size=8192, block_size=32768, n_layer=12, n_head=12, n_embd=768, window=512)
    return GPT(cfg).to("cuda", torch.bfloat16).eval()

for arch in ("gpt", "swan"):
    model = build(arch)
    for B in (1, 8):
        C = 1024
        prompt = torch.randint(8192, (B, C), device="cuda")
        times = []
        with torch.no_grad():
            for i in range(8):
                cache = KVCache(model.config, B, C + 256, "cuda")
                torch.cuda.synchronize(); t0 = time.perf_counter()
                model(prompt, cache=cache)
                torch.cuda.synchronize(); times.append(time.perf_counter() - t0)
            cache = KVCache(model.config, B, C + 256, "cuda")
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                model(prompt, cache=cache)
                torch.cuda.synchronize()
        times = sorted(times[2:])
        print(f"\n==== {arch} B={B} C={C}: prefill ms median {1e3 * times[len(times) // 2]:.3f} (min {1e3 * times[0]:.3f})")
        try:
            print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=60))
        except Exception:
            print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=18, max_name_column_width=60))
    # the same prefill without a cache (the training path): does the cache cost it?
    with torch.no_grad():
        prompt = torch.randint(8192, (8, 1024), device="cuda")
        for i in range(6):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            model(prompt)
            torch.cuda.synchronize(); t = time.perf_counter() - t0
        print(f"{arch} B=8 no cache: {1e3 * t:.3f} ms")
