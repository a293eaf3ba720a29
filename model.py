"""
The whole decoder. GPT-RoPE, NoPE, SWA-RoPE, SWAN and SWAT are configurations of this one model:
`layer_pattern` says, letter by letter and cycled over the layers, what each layer attends to.

    G  global causal attention with RoPE           (the standard GPT)
    N  global causal attention, no positions (NoPE: sees the whole past, knows no distances)
    S  sliding-window attention with RoPE over the last `window` keys, itself included

    gpt  = "G"     nope = "N"     swa = "S"     swan = "NSSS"     swat = "S" + sigmoid + ALiBi

SWAN-GPT's idea (arXiv 2504.08719): RoPE only ever sees distances < window, which training covers,
and the NoPE layers carry information across any distance without a position signal that could go
out of distribution. So the model runs at lengths far beyond its training length L. SWAT (arXiv
2502.18845) windows every layer and replaces softmax with a sigmoid over RoPE logits plus ALiBi.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from attention import attention, attention_decode
from attention_decode_triton import attention_decode_step_triton
from linear_decode_triton import linear_decode_triton

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
    alibi: str = "none"  # "none" | "balanced" (SWAT) | "negative" (standard ALiBi): per-head slopes on the logits
    scale_base: float | None = None  # dynamic attention scaling base a for N layers, eval only
    scale_start: int = 0  # queries before this position are not scaled; 0 = the paper's curve (see forward)
    n_kv_head: int = 0  # key/value heads (grouped-query attention: n_head a multiple of it); 0 = n_head
    mlp: str = "gelu"  # "gelu" (4x wide, GPT-2) | "swiglu" (Llama: silu(gate) * up)
    mlp_hidden: int = 0  # the MLP's hidden width; 0 = 4 * n_embd
    norm_eps: float | None = None  # RMSNorm epsilon; None = torch's default (the dtype's machine epsilon)

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
        if self.scale_start < 0:
            bad("scale_start", self.scale_start, "an integer >= 0")
        if self.n_kv_head < 0 or (self.n_kv_head and self.n_head % self.n_kv_head):
            bad("n_kv_head", self.n_kv_head, f"0 (= n_head) or a divisor of n_head={self.n_head}")
        if self.mlp not in ("gelu", "swiglu"):
            bad("mlp", self.mlp, "'gelu' or 'swiglu'")
        if self.mlp_hidden < 0:
            bad("mlp_hidden", self.mlp_hidden, "0 (= 4 * n_embd) or an integer >= 1")
        if self.norm_eps is not None and not self.norm_eps > 0:
            bad("norm_eps", self.norm_eps, "None or a number > 0")

    # the resolved sizes; the fields keep 0 ("the default") so a saved config means the same later
    @property
    def head_dim(self):
        return self.n_embd // self.n_head

    @property
    def kv_heads(self):
        return self.n_kv_head or self.n_head

    @property
    def hidden(self):
        return self.mlp_hidden or 4 * self.n_embd

    def layer_kind(self, layer):
        return self.layer_pattern[layer % len(self.layer_pattern)]

    @classmethod
    def from_arch(cls, arch, **overrides):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}: allowed {', '.join(ARCHS)}")
        return cls(**{**ARCHS[arch], **overrides})


def alibi_slopes(n_head, sign_pattern):
    """Per-head slopes s_h of the logit term s_h * (i - j). 'balanced' (SWAT, arXiv 2502.18845):
    -2^-k for half the heads (favour recent keys) and +2^-k for the other half (keep old keys in
    view), k = 1..H/2. 'negative': standard ALiBi (arXiv 2108.12409), -2^(-8k/H), k = 1..H, which
    is -2^-k only when H = 8 (the ALiBi paper gives this geometric sequence for H a power of two
    and interleaves two of them otherwise; we use the formula for every H); SWAT's all-negative
    variant."""
    if sign_pattern == "negative":
        return -(2.0 ** (-8.0 * torch.arange(1, n_head + 1, dtype=torch.float32) / n_head))
    half = 2.0 ** -torch.arange(1, n_head // 2 + 1, dtype=torch.float32)
    return torch.cat([-half, half])


def rope_tables(n_pos, head_dim, base, device, fraction=1.0):
    """cos and sin of RoPE's angles at positions 0..n_pos-1, each angle times fraction (a number
    or a 0-dim tensor: GPT.set_rope_fade's)."""
    inv_freq = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32, device=device), inv_freq) * fraction
    return angles.cos(), angles.sin()  # (n_pos, head_dim/2) each


def apply_rope(x, cos, sin):  # x (B, H, T, hd); cos, sin (T, hd/2): rotate pairs (x1[i], x2[i])
    x1, x2 = x.to(torch.promote_types(x.dtype, torch.float32)).chunk(2, dim=-1)  # bf16 rotated in fp32
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class KVCache:
    """Keys and values of every layer for generation, in buffers whose shapes never change.

    G and N layers: (B, Hkv, max_len, hd), the key of position p in slot p. S layers: a ring of
    `window` slots, position p in slot p % window, so their memory is bounded however long the
    generation runs. Hkv = n_kv_head: grouped-query attention caches only the key/value heads.
    Fixed shapes and addresses make every decoding step the same kernels on the same memory,
    which a CUDA graph can capture (GPT.decoder). `pos` is the absolute position of
    the next token on the host; `pos_t` holds the same on the device for the captured step.
    Which attention_decode path a step attends with is the model's choice, not the cache's:
    GPT.set_decode_backend."""

    def __init__(self, config, batch_size, max_len, device):
        self.config, self.batch_size, self.max_len = config, batch_size, max_len
        self.slots = [min(config.window, max_len) if config.layer_kind(layer) == "S" else max_len
                      for layer in range(config.n_layer)]
        self.k, self.v = [None] * config.n_layer, [None] * config.n_layer  # allocated on first use
        self.pos, self.pos_t = 0, torch.zeros(1, dtype=torch.long, device=device)

    def buffers(self, layer, like):  # (k, v) of a layer, in the dtype the keys come in (bf16 under autocast)
        if self.k[layer] is None:
            shape = (self.batch_size, self.config.kv_heads, self.slots[layer], self.config.head_dim)
            self.k[layer], self.v[layer] = like.new_zeros(shape), like.new_zeros(shape)
        return self.k[layer], self.v[layer]

    def key_positions(self, layer):  # (S,) the position each slot holds (negative: empty), by pos_t
        slots = torch.arange(self.slots[layer], device=self.pos_t.device)
        if self.config.layer_kind(layer) != "S":
            return slots
        return self.pos_t - (self.pos_t - slots) % self.slots[layer]  # the ring, after writing pos_t

    def ring_runs(self, layer, start, end):
        """Where positions start..end-1 (at most a ring's worth) sit in layer's slots: runs of
        consecutive slots, at most two (the ring wraps once), as (first slot, end slot, first position).
        Host integers, so that reading and writing the ring are plain slices, not index kernels."""
        n_slots, runs = self.slots[layer], []
        while start < end:
            slot = start % n_slots
            n = min(end - start, n_slots - slot)
            runs.append((slot, slot + n, start))
            start += n
        return runs

    def check_room(self, T):
        if T > self.max_len - self.pos:
            raise ValueError(f"the KV cache holds {self.max_len} positions; {self.pos} are used and {T} more do not fit")

    def advance(self, T):  # the host and device positions move together
        self.pos += T
        self.pos_t += T

    def rewind(self, pos):
        self.pos = pos
        self.pos_t.fill_(pos)

    def nbytes(self):
        return sum(t.nbytes for t in self.k + self.v if t is not None)


class Attention(nn.Module):
    decode_backend = "torch"  # the decoding steps' kernels: "torch" or "triton" (Block.decode); GPT.set_decode_backend

    def __init__(self, config, layer):
        super().__init__()
        self.config, self.layer = config, layer
        self.kind = config.layer_kind(layer)
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.kv_heads, config.head_dim
        # one fused matmul: rows of the q heads, then the k heads, then the v heads (with
        # n_kv_head == n_head exactly the old 3 * n_embd layout, so old checkpoints load)
        self.c_attn = nn.Linear(config.n_embd, (config.n_head + 2 * self.n_kv_head) * self.head_dim, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        slopes = alibi_slopes(config.n_head, config.alibi) if config.alibi != "none" else None
        self.register_buffer("alibi_slopes", slopes, persistent=False)  # no parameters: conversion loads strictly

    def forward(self, x, rope, cache=None, faded=None):
        return self.c_proj(self.attend(self.c_attn(x), rope, cache, faded))

    def attend(self, qkv, rope, cache=None, faded=None):  # qkv (B, T, (H + 2 Hkv) hd) -> (B, T, C), before c_proj
        B, T, _ = qkv.shape
        qkv = qkv.view(B, T, self.n_head + 2 * self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k, v = qkv.split([self.n_head, self.n_kv_head, self.n_kv_head], dim=1)  # (B, H or Hkv, T, hd)
        # where these T tokens are: from the host for a prompt (any T), from the device for a
        # decoding step (T = 1), so that a captured CUDA graph reads the current position
        decoding = cache is not None and T == 1
        p0 = cache.pos if cache is not None and not decoding else 0  # a step reads no host position
        if self.kind in "GS":
            cos, sin = (rope[0][cache.pos_t], rope[1][cache.pos_t]) if decoding else (rope[0][p0:p0 + T], rope[1][p0:p0 + T])
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # cos, sin (T, hd/2)
        elif faded is not None:  # an N layer of a conversion whose RoPE is fading out (GPT.set_rope_fade)
            q, k = apply_rope(q, *faded), apply_rope(k, *faded)
        elif self.config.scale_base is not None and not self.training:
            # dynamic attention scaling (NoPE layers, inference only): the query at position n is
            # multiplied by log(a + n) / log(a), sharpening attention as the context grows. From a
            # scale_start n0 > 0 on, the same curve less its rise up to n0: 1 + log_a((a + n) / (a + n0)),
            # and 1 before n0 (with n0 = L, the positions the model trained on are left as trained)
            a, n0 = self.config.scale_base, self.config.scale_start
            n = cache.pos_t.float() if decoding else torch.arange(p0, p0 + T, device=qkv.device, dtype=torch.float32)
            s = 1 + (torch.log(a + n) - math.log(a + n0)).clamp(min=0) / math.log(a)  # (T,); = log_a(a + n) for n0 = 0
            q = (q * s.view(T, 1)).type_as(q)
        window = self.config.window if self.kind == "S" else None
        if cache is None:
            y = attention(q, k, v, window=window, kind=self.config.attn, alibi_slopes=self.alibi_slopes)
        elif decoding:
            y = self.decode(q, k, v, cache)
        else:
            y = self.prefill(q, k, v, cache, window)
        return y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)

    def decode_fused(self, qkv, rope, cache):  # qkv (B, 1, ...) -> (B, 1, C): a window layer's attend for a
        # decoding step in one kernel, RoPE, the cache write and the ring's positions folded in (Block.decode)
        k_buf, v_buf = cache.buffers(self.layer, qkv)
        y = attention_decode_step_triton(qkv, self.n_head, k_buf, v_buf, cache.pos_t, rope, ring=True,
                                         kind=self.config.attn, alibi_slopes=self.alibi_slopes)  # (B, H, 1, hd)
        return y.transpose(1, 2).reshape(qkv.shape[0], 1, self.n_head * self.head_dim)

    def decode(self, q, k, v, cache):  # one token per sequence, written to its slot, against all slots
        k_buf, v_buf = cache.buffers(self.layer, k)
        slot = cache.pos_t % cache.slots[self.layer]  # (1,); the position itself in a global layer
        k_buf.index_copy_(2, slot, k)
        v_buf.index_copy_(2, slot, v)
        return attention_decode(q, k_buf, v_buf, cache.key_positions(self.layer), cache.pos_t,
                                kind=self.config.attn, alibi_slopes=self.alibi_slopes, backend=self.decode_backend)

    def prefill(self, q, k, v, cache, window):  # T new tokens at host positions pos..pos+T-1
        T, p = q.shape[2], cache.pos
        k_buf, v_buf = cache.buffers(self.layer, k)
        if self.kind != "S":
            k_buf[:, :, p:p + T], v_buf[:, :, p:p + T] = k, v
            keys, values = (k, v) if p == 0 else (k_buf[:, :, :p + T], v_buf[:, :, :p + T])
        else:  # the cached keys still in the window, in position order, then the new ones
            held = cache.ring_runs(self.layer, max(0, p - (window - 1)), p)  # none for a first prompt
            keys = torch.cat([k_buf[:, :, a:b] for a, b, _ in held] + [k], dim=2) if held else k
            values = torch.cat([v_buf[:, :, a:b] for a, b, _ in held] + [v], dim=2) if held else v
            for a, b, first in cache.ring_runs(self.layer, p + T - min(T, cache.slots[self.layer]), p + T):
                new = slice(first - p, first - p + b - a)  # the newest that fit in the ring, among the T
                k_buf[:, :, a:b], v_buf[:, :, a:b] = k[:, :, new], v[:, :, new]
        return attention(q, keys, values, window=window, kind=self.config.attn, alibi_slopes=self.alibi_slopes)


class MLP(nn.Module):
    # GELU, 4x wide, as in GPT-2/nanoGPT by default: the papers' claims are about attention, so the
    # MLP stays the most familiar one. "swiglu" is Llama's, for importing pretrained models.
    def __init__(self, config):
        super().__init__()
        self.swiglu = config.mlp == "swiglu"
        # swiglu: one matmul for both halves, rows [0, hidden) the gate and [hidden, 2 * hidden)
        # the up projection (an importer concatenates ffn_gate, then ffn_up)
        self.c_fc = nn.Linear(config.n_embd, (2 if self.swiglu else 1) * config.hidden, bias=False)
        self.c_proj = nn.Linear(config.hidden, config.n_embd, bias=False)

    def forward(self, x):
        if self.swiglu:
            gate, up = self.c_fc(x).chunk(2, dim=-1)
            return self.c_proj(F.silu(gate) * up)
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config, layer):
        super().__init__()
        self.ln_1, self.attn = nn.RMSNorm(config.n_embd, eps=config.norm_eps), Attention(config, layer)
        self.ln_2, self.mlp = nn.RMSNorm(config.n_embd, eps=config.norm_eps), MLP(config)

    def forward(self, x, rope, cache=None, faded=None):
        x = x + self.attn(self.ln_1(x), rope, cache, faded)
        return x + self.mlp(self.ln_2(x))

    def decode(self, x, normed, rope, cache, next_norm):  # x (B, 1, C) -> (x, next_norm(x) as a Normed)
        # forward's one decoding step in fewer kernels (GPT.set_decode_backend("triton")): each
        # matmul one kernel with the activation or the residual add after it folded in, and the
        # RMSNorm after a residual add split between the two matmuls around it (linear_decode_triton.py:
        # normed is ln_1(x) so made); a window layer's attention one kernel from the projection on
        # (Attention.decode_fused). A global layer's attention stays as in forward: the one-kernel
        # form was slower over a 32k cache on an H100 (280-294 against 276 us a layer, notes/kernel.md).
        attn, mlp = self.attn, self.mlp
        qkv = linear_decode_triton(normed, attn.c_attn.weight)  # (B, 1, (H + 2 Hkv) hd)
        y = attn.decode_fused(qkv, rope, cache) if attn.kind == "S" else attn.attend(qkv, rope, cache)  # (B, 1, C)
        x, normed = linear_decode_triton(y, attn.c_proj.weight, residual=x, norm=self.ln_2)
        hidden = linear_decode_triton(normed, mlp.c_fc.weight, activation="swiglu" if mlp.swiglu else "gelu")
        return linear_decode_triton(hidden, mlp.c_proj.weight, residual=x, norm=next_norm)  # (B, 1, C), Normed


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            h=nn.ModuleList(Block(config, layer) for layer in range(config.n_layer)),
            ln_f=nn.RMSNorm(config.n_embd, eps=config.norm_eps),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embeddings
        self.rope = None  # (cos, sin) tables, grown on demand: extrapolation runs past block_size
        self.register_buffer("rope_fade", None, persistent=False)  # or 0-dim: the fraction of RoPE the N layers still get
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def set_scale_base(self, base, start=None):
        """Dynamic attention scaling of the N layers at evaluation: a base a > 1, or None (off);
        start (if given): the position where it begins (0: the paper's curve; forward)."""
        if base is not None and not base > 1:
            raise ValueError(f"scale_base must be None or a number > 1 (log(a) must be positive), got {base}")
        if start is not None and start < 0:
            raise ValueError(f"scale_start must be >= 0, got {start}")
        self.config.scale_base = base  # the attention layers share this config and read it per call
        if start is not None:
            self.config.scale_start = start
        return self

    def set_rope_fade(self, fraction):
        """A conversion's N layers while they learn to work without RoPE (train.py --rope_fade):
        with fraction f in (0, 1] they rotate queries and keys by f times RoPE's angles, so that
        f going down to 0 takes them from the source's RoPE to none in small steps instead of
        one. None or 0: no RoPE (an N layer as it is). Training only: a cache is refused. The
        value lives in a tensor, changed in place, so a compiled model does not recompile for
        each new f."""
        if fraction is None or fraction == 0:
            self.rope_fade = None
        elif not 0 < fraction <= 1:
            raise ValueError(f"rope fade must be a fraction in [0, 1] or None, got {fraction}")
        elif self.rope_fade is None:
            self.rope_fade = torch.tensor(float(fraction), device=self.lm_head.weight.device)
        else:
            self.rope_fade.fill_(fraction)
        return self

    @staticmethod
    def _refuse_fading_decode():  # the cached paths have no fading RoPE: they would decode another model
        raise RuntimeError("a fading RoPE is for training (GPT.set_rope_fade); set it to None to decode")

    def set_decode_backend(self, backend):
        """The kernels of every decoding step: "torch" (the default: attention_decode's PyTorch
        path and the modules' own) or "triton" (GPT.decode_step through Block.decode:
        attention_decode_triton.py for the attention, and linear_decode_triton.py for each matmul
        with its activation or residual add, and the norms split between the matmuls; a forward
        of one token with a cache outside decode_step takes the attention kernel only). A switch
        of the running model, not of its config: it changes no number beyond rounding, so
        checkpoints neither store nor need it. Set it before GPT.decoder captures a step: a
        captured graph keeps the kernels it was captured with."""
        if backend not in ("torch", "triton"):
            raise ValueError(f"decode backend must be 'torch' or 'triton', got {backend!r}")
        for block in self.transformer.h:
            block.attn.decode_backend = backend
        return self

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def rope_for(self, n_pos, device):
        if self.rope is None or self.rope[0].shape[0] < n_pos or self.rope[0].device != device:
            n = max(n_pos, self.config.block_size)
            n = 1 << (n - 1).bit_length()  # powers of two: few regrowths as lengths climb
            self.rope = rope_tables(n, self.config.head_dim, self.config.rope_base, device)
        return self.rope

    def forward(self, idx, targets=None, cache=None, reduction="mean", last=1):
        """idx (B, T) -> (logits, loss). With targets: logits (B, T, vocab) and the cross-entropy
        (a mean, or (B, T) with reduction="none"). Without: the logits of the last `last`
        positions only, (B, last, vocab): generation needs one, scoring an answer a few."""
        B, T = idx.shape
        if cache is not None:
            cache.check_room(T)
        rope = self.rope_for(cache.max_len if cache is not None else T, idx.device)
        faded = None
        if self.rope_fade is not None:
            if cache is not None:
                self._refuse_fading_decode()
            faded = rope_tables(T, self.config.head_dim, self.config.rope_base, idx.device, self.rope_fade)
        x = self.transformer.wte(idx)  # (B, T, n_embd)
        for block in self.transformer.h:
            x = block(x, rope, cache, faded)
        x = self.transformer.ln_f(x)
        if cache is not None:
            cache.advance(T)
        if targets is None:
            assert last >= 1, f"last={last}: ask for the logits of at least one position"
            return self.lm_head(x[:, -last:, :]), None  # (B, last, vocab)
        logits = self.lm_head(x)  # (B, T, vocab)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)
        return logits, loss if reduction != "none" else loss.view(B, T)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True, cuda_graph=True):
        """Continue idx (B, T) by max_new_tokens. temperature=0 is greedy. With the cache, the
        prompt goes through once and each new token is one decoding step, on a GPU a replayed
        CUDA graph unless cuda_graph=False. use_cache=False recomputes the whole sequence for
        every token: the reference the cache must equal."""
        if max_new_tokens < 1:
            return idx
        if use_cache:
            cache = KVCache(self.config, idx.shape[0], idx.shape[1] + max_new_tokens, idx.device)
            logits, _ = self(idx, cache=cache)
            # a graph pays off over several steps; one step (or none) goes eagerly
            step = self.decoder(cache, cuda_graph=cuda_graph and idx.is_cuda and max_new_tokens > 2)
        else:
            logits, _ = self(idx)
        for i in range(max_new_tokens):
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
            if i + 1 < max_new_tokens:
                logits = step(idx_next) if use_cache else self(idx)[0]
        return idx

    @torch.no_grad()  # compiled with gradients on, the step's writes to the cache went wrong from step 2 on
    def decode_step(self, token, cache, rope):
        """token (B, 1) -> logits (B, 1, vocab): one decoding step on the device alone. It reads the
        position from cache.pos_t and moves it, never the host's cache.pos, so every step is the
        same computation: what a CUDA graph captures and torch.compile compiles once. The caller
        checks the room and moves cache.pos (GPT.decoder)."""
        x = self.transformer.wte(token)  # (B, 1, n_embd)
        blocks = self.transformer.h
        if blocks[0].attn.decode_backend == "triton":  # Block.decode: each block hands the next its ln_1(x)
            normed = blocks[0].ln_1(x)
            for i, block in enumerate(blocks):
                next_norm = blocks[i + 1].ln_1 if i + 1 < len(blocks) else self.transformer.ln_f
                x, normed = block.decode(x, normed, rope, cache, next_norm)
            cache.pos_t += 1
            return linear_decode_triton(normed, self.lm_head.weight)  # (B, 1, vocab)
        for block in blocks:
            x = block(x, rope, cache)
        cache.pos_t += 1
        return self.lm_head(self.transformer.ln_f(x))  # (B, 1, vocab)

    def decoder(self, cache, cuda_graph=False, compile_step=False, compile_mode=None):
        """A decoding step, token (B, 1) -> logits (B, 1, vocab), that advances the cache. With
        cuda_graph (a cache on the GPU) the step is captured once as a CUDA graph and replayed:
        its ~15 small kernels per layer then cost one launch, which at small batch is most of
        the step's time. With compile_step (True, or a torch.compile backend), decode_step is
        compiled first, once for all positions, so that its small operations fuse into fewer
        kernels (opt-in; on an H100 steps 1.8x faster at 1k context, README). Only after the
        prompt's pass (it makes the cache's buffers); each new cache is one more compilation, of
        which dynamo allows 8 before it quietly runs eagerly: torch._dynamo.reset() between
        many, as bench.py does. The graph reads the RoPE tables and (under autocast) autocast's
        cached bf16 copies of the weights by address: replay it inside the same `with
        torch.autocast` block that captured it, as `generate` does. Its logits tensor is reused
        by every step. Its kernels are those set_decode_backend chose. compile_mode (only with
        compile_step; passed to torch.compile, and so to a custom backend) is torch.compile's
        mode, e.g. "max-autotune-no-cudagraphs", which lets Inductor time its own matmul kernels
        against cuBLAS: measured level with the default at batch 8 on an H100 (README)."""
        if self.rope_fade is not None:
            self._refuse_fading_decode()
        rope = self.rope_for(cache.max_len, cache.pos_t.device)
        run = self.decode_step
        if compile_step:
            if any(k is None for k in cache.k):
                raise ValueError("compile a decoding step after the prompt's pass: it makes the cache's buffers")
            backend = "inductor" if compile_step is True else compile_step
            run = torch.compile(run, dynamic=False, backend=backend, mode=compile_mode)
        if not cuda_graph:
            def step(token):
                cache.check_room(1)
                logits = run(token, cache, rope)
                cache.pos += 1
                return logits
            return step
        pos, device = cache.pos, cache.pos_t.device
        static_token = torch.zeros(cache.batch_size, 1, dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)  # once outside the graph, as torch.cuda.graph's docs ask:
        side.wait_stream(torch.cuda.current_stream(device))  # lazy setup (cuBLAS handles, compiling, ...)
        with torch.cuda.stream(side):
            run(static_token, cache, rope)
        torch.cuda.current_stream(device).wait_stream(side)
        cache.rewind(pos)  # its write to slot pos is overwritten by the first real step
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_logits = run(static_token, cache, rope)
        cache.rewind(pos)  # capturing ran nothing on the GPU

        def step(token):
            assert self.rope is rope, "the RoPE tables were regrown after the decoding step was captured"
            cache.check_room(1)
            static_token.copy_(token)
            graph.replay()
            cache.pos += 1  # the graph moved pos_t
            return static_logits  # overwritten by the next step

        return step

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # decay the 2-D weights (matmuls, embeddings); never the norms' gains
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=(device_type == "cuda"))
