"""
The whole decoder. GPT-RoPE, NoPE, SWA-RoPE, SWAN and SWAT are configurations of this one model:
`layer_pattern` says, letter by letter and cycled over the layers, what each layer attends to.

    G  global causal attention with RoPE           (the standard GPT)
    N  global causal attention, no positions (NoPE: sees the whole past, knows no distances)
    S  sliding-window attention with RoPE over the last `window` keys, itself included

    gpt  = "G"     nope = "N"     swa = "S"     swan = "NSSS"     swat = "S" + sigmoid + ALiBi

SWAN-GPT's idea (PAPERS.md): RoPE only ever sees distances < window, which training covers, and
the NoPE layers carry information across any distance without a position signal that could go
out of distribution. So the model runs at lengths far beyond its training length L.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from attention import attention

ARCHS = {  # the presets the scripts name with --arch
    "gpt": dict(layer_pattern="G", attn="softmax", alibi="none"),
    "nope": dict(layer_pattern="N", attn="softmax", alibi="none"),
    "swa": dict(layer_pattern="S", attn="softmax", alibi="none"),
    "swan": dict(layer_pattern="NSSS", attn="softmax", alibi="none"),
    "swat": dict(layer_pattern="S", attn="sigmoid", alibi="balanced"),
}


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    block_size: int = 256  # the training length L; forward accepts any length
    n_layer: int = 4  # the defaults are the small CPU model `python train.py` trains
    n_head: int = 4
    n_embd: int = 256
    layer_pattern: str = "NSSS"  # cycled over the layers: G, N or S per layer
    window: int = 64  # keys an S layer sees, itself included
    rope_base: float = 10000.0
    attn: str = "softmax"  # "softmax" | "sigmoid" (SWAT)
    alibi: str = "none"  # "none" | "balanced" | "negative": per-head slopes added to the logits
    scale_base: float | None = None  # dynamic attention scaling base a for N layers, eval only

    def __post_init__(self):
        def bad(field, value, allowed):
            raise ValueError(f"GPTConfig.{field}={value!r} is invalid: allowed {allowed}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                bad(name, getattr(self, name), "an integer >= 1")
        if not self.layer_pattern or set(self.layer_pattern) - set("GNS"):
            bad("layer_pattern", self.layer_pattern, "a non-empty string of the letters G, N, S")
        if self.window < 1:
            bad("window", self.window, "an integer >= 1")
        if self.n_embd % self.n_head:
            bad("n_embd", self.n_embd, f"a multiple of n_head={self.n_head}")
        if (self.n_embd // self.n_head) % 2:
            bad("n_head", self.n_head, f"a divisor of n_embd={self.n_embd} leaving an even head dim (RoPE rotates pairs)")
        if self.attn not in ("softmax", "sigmoid"):
            bad("attn", self.attn, "'softmax' or 'sigmoid'")
        if self.alibi not in ("none", "balanced", "negative"):
            bad("alibi", self.alibi, "'none', 'balanced' or 'negative'")
        if self.alibi == "balanced" and self.n_head % 2:
            bad("alibi", self.alibi, f"'none' or 'negative' with an odd n_head={self.n_head}")
        if self.scale_base is not None and self.scale_base <= 1:
            bad("scale_base", self.scale_base, "None or a number > 1 (log(a) must be positive)")

    def layer_kind(self, layer):
        return self.layer_pattern[layer % len(self.layer_pattern)]

    @classmethod
    def from_arch(cls, arch, **overrides):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}: allowed {', '.join(ARCHS)}")
        return cls(**{**ARCHS[arch], **overrides})


def alibi_slopes(n_head, sign_pattern):
    """SWAT's slopes: +-2^-k, k = 1..H/2. 'balanced': half the heads negative (favour recent keys),
    half positive (keep old keys in view); 'negative': all negative, k = 1..H (standard ALiBi)."""
    if sign_pattern == "negative":
        return -(2.0 ** -torch.arange(1, n_head + 1, dtype=torch.float32))
    half = 2.0 ** -torch.arange(1, n_head // 2 + 1, dtype=torch.float32)
    return torch.cat([-half, half])


def rope_tables(n_pos, head_dim, base, device):
    inv_freq = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32, device=device), inv_freq)
    return angles.cos(), angles.sin()  # (n_pos, head_dim/2) each


def apply_rope(x, cos, sin):  # x (B, H, T, hd); cos, sin (T, hd/2): rotate pairs (x1[i], x2[i])
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class KVCache:
    """Per-layer keys and values for generation. Global layers keep every key; S layers keep only
    the last `window` (all their next query can see), so their memory is bounded however long the
    generation runs. `pos` counts every token seen: the absolute position of the next one."""

    def __init__(self, n_layer):
        self.k, self.v, self.pos = [None] * n_layer, [None] * n_layer, 0

    def update(self, layer, k, v, keep=None):  # returns all keys the new queries attend to
        if self.k[layer] is not None:
            k, v = torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = (k, v) if keep is None else (k[:, :, -keep:], v[:, :, -keep:])
        return k, v


class Attention(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.config, self.layer = config, layer
        self.kind = config.layer_kind(layer)
        self.n_head, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        slopes = alibi_slopes(config.n_head, config.alibi) if config.alibi != "none" else None
        self.register_buffer("alibi_slopes", slopes, persistent=False)  # no parameters: conversion loads strictly

    def forward(self, x, rope, cache=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, T, hd) each
        pos = cache.pos if cache is not None else 0  # absolute position of the first of these T tokens
        if self.kind in "GS":
            cos, sin = rope[0][pos:pos + T], rope[1][pos:pos + T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        elif self.config.scale_base is not None and not self.training:
            # dynamic attention scaling (NoPE layers, inference only): the query at position n is
            # multiplied by log(a + n) / log(a), sharpening attention as the context grows
            a = self.config.scale_base
            n = torch.arange(pos, pos + T, device=x.device, dtype=torch.float32)
            q = (q * (torch.log(a + n) / math.log(a)).view(T, 1)).type_as(q)
        window = self.config.window if self.kind == "S" else None
        if cache is not None:
            k, v = cache.update(self.layer, k, v, keep=window)
        y = attention(q, k, v, window=window, kind=self.config.attn, alibi_slopes=self.alibi_slopes)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    # GELU, 4x wide, as in GPT-2/nanoGPT: the papers' claims are about attention, so the MLP stays
    # the most familiar one.
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.ln_1, self.attn = nn.RMSNorm(config.n_embd), Attention(config, layer)
        self.ln_2, self.mlp = nn.RMSNorm(config.n_embd), MLP(config)

    def forward(self, x, rope, cache=None):
        x = x + self.attn(self.ln_1(x), rope, cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            h=nn.ModuleList(Block(config, layer) for layer in range(config.n_layer)),
            ln_f=nn.RMSNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embeddings
        self.rope = None  # (cos, sin) tables, grown on demand: extrapolation runs past block_size
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def rope_for(self, n_pos, device):
        if self.rope is None or self.rope[0].shape[0] < n_pos or self.rope[0].device != device:
            n = max(n_pos, self.config.block_size)
            n = 1 << (n - 1).bit_length()  # powers of two: few regrowths as lengths climb
            self.rope = rope_tables(n, self.config.n_embd // self.config.n_head, self.config.rope_base, device)
        return self.rope

    def forward(self, idx, targets=None, cache=None, reduction="mean"):
        B, T = idx.shape
        pos = cache.pos if cache is not None else 0
        rope = self.rope_for(pos + T, idx.device)
        x = self.transformer.wte(idx)  # (B, T, n_embd)
        for block in self.transformer.h:
            x = block(x, rope, cache)
        x = self.transformer.ln_f(x)
        if cache is not None:
            cache.pos += T
        if targets is None:  # generation needs only the last position's logits
            return self.lm_head(x[:, [-1], :]), None  # (B, 1, vocab)
        logits = self.lm_head(x)  # (B, T, vocab)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)
        return logits, loss if reduction != "none" else loss.view(B, T)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True):
        """Continue idx (B, T) by max_new_tokens. temperature=0 is greedy. With use_cache=False
        every step recomputes the whole sequence (the reference the cache must equal)."""
        cache = KVCache(self.config.n_layer) if use_cache else None
        logits, _ = self(idx, cache=cache)
        for _ in range(max_new_tokens):
            logits = logits[:, -1, :].float()
            if temperature == 0:
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
            logits, _ = self(idx_next if use_cache else idx, cache=cache)
        return idx

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # decay the 2-D weights (matmuls, embeddings); never the norms' gains
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=(device_type == "cuda"))
