# throwaway: bench.py's own prefill and decode measurement (bench_generate) at 1k and 4k, gpt and swan
import json, sys, time
import torch
sys.path.insert(0, ".")
import bench
from model import GPT
import attention_triton as at

cfg = bench.BenchConfig(decode_backend="triton")
bw = bench.copy_bandwidth("cuda")
out = {}
for arch in ("gpt", "swan"):
    torch.manual_seed(0)
    model = GPT(bench.model_config(cfg, arch, 32768)).to("cuda", torch.bfloat16).eval()
    model.set_decode_backend(cfg.decode_backend)
    for C in (1024, 4096):
        for B in (1, 8):
            r = bench.bench_generate(cfg, arch, model, C, B, "cuda", bw)
            out[f"{arch} C={C} B={B}"] = [round(r["prefill_tok_s"]), round(r["decode_tok_s"])]
    del model
# host cost of one call: the custom op against the direct launch (tiny shape: launch-bound)
q = torch.randn(1, 12, 64, 64, device="cuda", dtype=torch.bfloat16)
for name, fn in (("op", at._fwd_op), ("direct", getattr(at, "_fwd", None))):
    if fn is None:
        continue
    with torch.no_grad():
        for _ in range(50):
            fn(q, q, q, None, 32, False, 0.125)
        torch.cuda.synchronize(); t0 = time.perf_counter()
        for _ in range(500):
            fn(q, q, q, None, 32, False, 0.125)
        torch.cuda.synchronize()
    out[f"us per call, {name}"] = round(1e6 * (time.perf_counter() - t0) / 500, 1)
print(json.dumps(out))
