# A probe kept as the record of one CPU run (not a tool of the repository): the loss a gpt's layer adds when it becomes N (RoPE dropped), as conversion.py
# measures it, and the same with the query rows of its fast RoPE pairs zeroed (pairs whose angle
# over L exceeds a cutoff), which removes their now position-blind dot products at the start.
import sys
import numpy as np
import torch
sys.path.insert(0, ".")
from checkpoint import load_model
from data.prepare import load_split

run = sys.argv[1]
model, ckpt = load_model(run)
model.eval()
cfg = model.config
L, hd, H = cfg.block_size, cfg.head_dim, cfg.n_head
tokens, _ = load_split("data/gutenberg", "val")
rng = np.random.default_rng(0)
starts = rng.integers(0, len(tokens) - L - 1, size=256)
x = torch.from_numpy(np.stack([tokens[s:s + L].astype(np.int64) for s in starts]))
y = torch.from_numpy(np.stack([tokens[s + 1:s + L + 1].astype(np.int64) for s in starts]))


@torch.no_grad()
def loss():
    return sum(model(x[i:i + 64], y[i:i + 64])[1].item() for i in range(0, len(x), 64)) / (len(x) // 64)


inv_freq = cfg.rope_base ** -(torch.arange(0, hd, 2, dtype=torch.float32) / hd)  # (hd/2,)
span = inv_freq * L  # each pair's angle over the training length
print(f"{run}: L={L} hd={hd}; angle over L per pair: " + " ".join(f"{a:.2g}" for a in span.tolist()))
base = loss()
print(f"base loss {base:.4f}")
for layer, block in enumerate(model.transformer.h):
    attn = block.attn
    row = []
    attn.kind = "N"
    row.append(loss() - base)
    w = attn.c_attn.weight
    saved = w.data.clone()
    for cutoff in (3.14, 1.0, 0.3):
        fast = (span > cutoff).nonzero().flatten()
        dims = torch.cat([fast, fast + hd // 2])
        rows = torch.cat([h * hd + dims for h in range(H)])  # the query rows of those pairs, every head
        w.data[rows] = 0
        row.append(loss() - base)
        w.data.copy_(saved)
    attn.kind = "G"
    print(f"layer {layer}: N {row[0]:+.4f} | fast q zeroed, angle > pi {row[1]:+.4f}, > 1 {row[2]:+.4f}, > 0.3 {row[3]:+.4f}")
