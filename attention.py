"""
Causal attention with an optional sliding window: one function, two paths.

    attention(q, k, v, window=None, kind="softmax", alibi_slopes=None, scale=None, backend="auto")

q is (B, H, Tq, D); k and v are (B, Hkv, Tk, D) with Tq <= Tk, the queries being the LAST Tq
positions of the keys (the KV-cache form: Tq == Tk in training, Tq == 1 when decoding). H is a
multiple of Hkv (grouped-query attention): query head h reads key/value head h // (H // Hkv), so
Hkv == H is plain multi-head attention. Neither path copies k and v per query head (SDPA's
fused kernels take the groups as they are; only its float32 fallback on a GPU repeats them).
Query i sees key j when

    window=None:  j <= i                 (global causal attention)
    window=W:     0 <= i - j < W         (W keys, itself included)

and the logit is  l_ij = scale * q_i . k_j + slope_h * (i - j)   (the ALiBi term only when given).

    kind="softmax":  out_i = sum_j softmax_j(l_ij) v_j
    kind="sigmoid":  out_i = sum_j sigmoid(l_ij) v_j        (SWAT: no normalisation over keys)

The PyTorch path below is exact and memory-lean: a band of W keys never needs a T x T matrix, so
it walks query blocks and gives each only the keys it can see. The Triton path
(attention_triton.py) is the same function as fused kernels for the GPU; backend="auto" takes it
on CUDA wherever it applies.

    attention_decode(q, k, v, key_pos, query_pos, kind="softmax", alibi_slopes=None, scale=None, backend="torch")

is the decoding step against a static-shape cache (model.KVCache), whose slots need not be in
position order (a window layer's cache is a ring): the same logits, with i - j from key_pos.
backend="triton" takes attention_decode_triton.py's split-K kernel instead; "torch" stays the
default until that kernel is measured on a GPU.
"""

import torch
import torch.nn.functional as F

from attention_decode_triton import attention_decode_triton
from attention_triton import triton_applies, window_attention_triton


def attention(q, k, v, *, window=None, kind="softmax", alibi_slopes=None, scale=None, backend="auto"):
    if kind not in ("softmax", "sigmoid"):
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if window is not None and window < 1:
        raise ValueError(f"window must be None or >= 1, got {window}")
    if backend not in ("auto", "torch", "triton"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'triton', got {backend!r}")
    _check_heads(q, k, v)
    Tq, Tk = q.shape[2], k.shape[2]
    if Tq > Tk:
        raise ValueError(f"more queries than keys ({Tq} > {Tk}): queries must be the last Tq of the keys")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if window is not None and window >= Tk:
        window = None  # a window that covers every key is global attention
    if backend == "auto":
        backend = "triton" if triton_applies(q, k, window, kind, alibi_slopes) else "torch"
    if backend == "triton":
        return window_attention_triton(q, k, v, window, kind, alibi_slopes, scale)
    return _attention_torch(q, k, v, window, kind, alibi_slopes, scale)


def _check_heads(q, k, v):
    if k.shape[1] != v.shape[1] or q.shape[1] % k.shape[1]:
        raise ValueError(f"q has {q.shape[1]} heads, k {k.shape[1]} and v {v.shape[1]}: k and v need the "
                         f"same number of heads, and q a multiple of it (grouped-query attention)")


# -----------------------------------------------------------------------------
# PyTorch path: exact, any device and dtype, gradients through autograd.
#
# Grouped-query attention without copying k and v per query head: the G = H / Hkv query heads
# that share a key/value head are stacked as the rows of one matmul against it ("fold"), and
# the result split back into heads for the per-head ALiBi slopes and the output ("unfold").

def _fold(x, Hkv):  # (B, H, T, ...) -> (B, Hkv, G * T, ...)
    return x.unflatten(1, (Hkv, -1)).flatten(2, 3)


def _unfold(x, G):  # (B, Hkv, G * T, ...) -> (B, H, T, ...)
    return x.unflatten(2, (G, -1)).flatten(1, 2)


def _attention_torch(q, k, v, window, kind, alibi_slopes, scale, block=128):
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    G = H // Hkv
    if window is None and kind == "softmax" and alibi_slopes is None and Tq in (1, Tk):
        # plain causal softmax: SDPA's fused kernels (flash on the GPU) are exact and fast.
        # SDPA's is_causal aligns the mask top-left, so it only matches our bottom-right
        # convention when Tq == Tk; a single query (decoding) sees every key anyway.
        # enable_gqa (torch >= 2.5): query head h reads kv head h // G, no copies (flash on the
        # GPU and on the CPU)
        return F.scaled_dot_product_attention(q, k, v, is_causal=(Tq == Tk), scale=scale, enable_gqa=Hkv != H)
    # Everything else: blocks of queries, each against the keys its band can reach. A window
    # gives each block at most block + W - 1 keys, so memory is O(T * W), never O(T^2) at once.
    # Half precision inputs are computed in float32, as the fused kernels do.
    compute_dtype = torch.promote_types(q.dtype, torch.float32)
    offset = Tk - Tq  # absolute position of query row 0
    block = max(block, window or 0)
    outs = []
    for q0 in range(0, Tq, block):
        q1 = min(q0 + block, Tq)
        i = torch.arange(offset + q0, offset + q1, device=q.device)  # absolute query positions
        k0 = 0 if window is None else max(0, offset + q0 - window + 1)
        k1 = offset + q1  # causal: nothing past the last query of the block
        j = torch.arange(k0, k1, device=q.device)
        dist = i[:, None] - j[None, :]  # (bq, bk) i - j
        visible = dist >= 0 if window is None else (dist >= 0) & (dist < window)
        qb = _fold(q[:, :, q0:q1].to(compute_dtype), Hkv)  # (B, Hkv, G * bq, D)
        kb, vb = k[:, :, k0:k1].to(compute_dtype), v[:, :, k0:k1].to(compute_dtype)
        logits = scale * _unfold(qb @ kb.transpose(-1, -2), G)  # (B, H, bq, bk)
        if alibi_slopes is not None:
            logits = logits + alibi_slopes.to(compute_dtype).view(H, 1, 1) * dist
        if kind == "softmax":
            weights = logits.masked_fill(~visible, float("-inf")).softmax(dim=-1)
        else:
            weights = torch.sigmoid(logits).masked_fill(~visible, 0.0)
        outs.append(_unfold(_fold(weights, Hkv) @ vb, G))  # (B, H, bq, D)
    return torch.cat(outs, dim=2).to(q.dtype)


def attention_decode(q, k, v, key_pos, query_pos, *, kind="softmax", alibi_slopes=None, scale=None, backend="torch"):
    """One query per sequence against a static-shape KV cache: the decoding step of generation.

    q (B, H, 1, D) at absolute position query_pos, a (1,) tensor on q's device; k, v (B, Hkv, S, D)
    cache slots (H a multiple of Hkv, as in attention()), slot s holding the key of position
    key_pos[s] (S,), negative while still empty.
    Slots at positions after query_pos are not seen. The cache decides what a layer can see: all
    positions for a global layer, a ring of `window` slots for a window layer, so no window
    argument. Nothing here depends on the position's value on the host: every step runs the same
    kernels on the same shapes, which is what lets a CUDA graph capture it.
    Decoding reads the whole cache once per step and does little arithmetic on it, so it is bound
    by memory bandwidth: plain matmuls in the cache's dtype read it at full speed; the logits (a
    few per key) are then taken to float32 for the bias, mask and softmax. The price, in bf16:
    the logits are rounded to bf16 first, which the fused kernels avoid (a relative error of
    about 0.8% instead of 0.2% against float64, for 512 keys).
    backend: "torch" (the default: this function's own matmuls, any device and dtype) or "triton"
    (attention_decode_triton.py: one split-K kernel that computes the logits in float32 and skips
    the empty slots; CUDA, or Triton's interpreter on the CPU; faster on an H100, README, but
    opt-in: the torch path is what every device runs)."""
    if backend not in ("torch", "triton"):
        raise ValueError(f"backend must be 'torch' or 'triton', got {backend!r}")
    _check_heads(q, k, v)
    if backend == "triton":
        return attention_decode_triton(q, k, v, key_pos, query_pos, kind, alibi_slopes, scale)
    H, Hkv = q.shape[1], k.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    dist = query_pos - key_pos  # (S,) i - j
    visible = (key_pos >= 0) & (dist >= 0)
    logits = _unfold(_fold(q, Hkv) @ k.transpose(-1, -2), H // Hkv)  # (B, H, 1, S)
    logits = scale * logits.to(torch.promote_types(logits.dtype, torch.float32))
    if alibi_slopes is not None:
        logits = logits + alibi_slopes.to(logits.dtype).view(H, 1, 1) * dist
    if kind == "softmax":
        weights = logits.masked_fill(~visible, float("-inf")).softmax(dim=-1)
    else:
        weights = torch.sigmoid(logits).masked_fill(~visible, 0.0)
    return _unfold(_fold(weights.to(v.dtype), Hkv) @ v, H // Hkv)  # (B, H, 1, D)
