# Kernels per compiled decoding step and their times (kept as the record of a run; run from a
# code tree's root with PYTHONPATH=. : the repository, or an older copy of it for an A/B)
import torch
from torch.profiler import profile, ProfilerActivity
from model import GPT, GPTConfig, KVCache

for arch, C in [("swan", 32768), ("gpt", 32768), ("swan", 1024)]:
    torch._dynamo.reset()
    torch.manual_seed(0)
    cfg = GPTConfig.from_arch(arch, vocab_size=8192, block_size=C, n_layer=12, n_head=12, n_embd=768, window=512)
    model = GPT(cfg).to("cuda", torch.bfloat16).eval().set_decode_backend("triton")
    B = 8
    with torch.no_grad():
        cache = KVCache(model.config, B, C + 256, "cuda")
        logits, _ = model(torch.randint(8192, (B, C), device="cuda"), cache=cache)
        step = model.decoder(cache, cuda_graph=False, compile_step=True)
        tok = logits.argmax(-1)
        for _ in range(10):
            tok = step(tok).argmax(-1)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                tok = step(tok).argmax(-1)
            torch.cuda.synchronize()
        ev = [x for x in prof.key_averages() if x.device_type.name == "CUDA"]
        total = sum(x.self_device_time_total for x in ev) / 10 / 1e3
        n = sum(x.count for x in ev) / 10
        print(f"== {arch} C={C}: kernels per step {n:.0f}, kernel time per step {total:.3f} ms", flush=True)
        for x in sorted(ev, key=lambda x: -x.self_device_time_total)[:18]:
            print(f"   {x.self_device_time_total / 10 / 1e3:7.3f} ms  x{x.count / 10:4.0f}  {x.key[:110]}")
    del model, cache
    torch.cuda.empty_cache()
