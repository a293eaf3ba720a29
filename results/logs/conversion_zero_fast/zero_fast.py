# Kept as the record of one CPU run (not a tool of the repository): a copy of a gpt checkpoint with the query rows of layer LAYER's fast RoPE pairs
# (angle over L above CUTOFF) zeroed, the rest as trained.
import sys, os, shutil
import torch
sys.path.insert(0, ".")
src, dst, layer, cutoff = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ckpt = torch.load(os.path.join(src, "ckpt.pt"), map_location="cpu", weights_only=True)
c = ckpt["model_config"]
hd = c["n_embd"] // c["n_head"]
L = c["block_size"]
inv_freq = c["rope_base"] ** -(torch.arange(0, hd, 2, dtype=torch.float32) / hd)
fast = ((inv_freq * L) > cutoff).nonzero().flatten()
dims = torch.cat([fast, fast + hd // 2])
rows = torch.cat([h * hd + dims for h in range(c["n_head"])])
key = f"transformer.h.{layer}.attn.c_attn.weight"
ckpt["model"][key][rows] = 0
os.makedirs(dst, exist_ok=True)
torch.save(ckpt, os.path.join(dst, "ckpt.pt"))
for f in os.listdir(src):
    if f != "ckpt.pt" and os.path.isfile(os.path.join(src, f)):
        shutil.copy(os.path.join(src, f), dst)
print(f"zeroed {len(rows)} query rows of layer {layer} ({len(fast)} pairs of {hd // 2})")
