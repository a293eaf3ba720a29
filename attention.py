"""
Causal attention with an optional sliding window: one function, two paths.

    attention(q, k, v, window=None, kind="softmax", alibi_slopes=None, scale=None, backend="auto")

q is (B, H, Tq, D); k and v are (B, H, Tk, D) with Tq <= Tk, the queries being the LAST Tq
positions of the keys (the KV-cache form: Tq == Tk in training, Tq == 1 when decoding).
Query i sees key j when

    window=None:  j <= i                 (global causal attention)
    window=W:     0 <= i - j < W         (W keys, itself included; see PAPERS.md on off-by-ones)

and the logit is  l_ij = scale * q_i . k_j + slope_h * (i - j)   (the ALiBi term only when given).

    kind="softmax":  out_i = sum_j softmax_j(l_ij) v_j
    kind="sigmoid":  out_i = sum_j sigmoid(l_ij) v_j        (SWAT: no normalisation over keys)

The PyTorch path below is exact and memory-lean: a band of W keys never needs a T x T matrix, so
it walks query blocks and gives each only the keys it can see. The Triton path (further down) is
the same function as one fused kernel for the GPU.
"""

import math

import torch
import torch.nn.functional as F


def attention(q, k, v, *, window=None, kind="softmax", alibi_slopes=None, scale=None, backend="auto"):
    if kind not in ("softmax", "sigmoid"):
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if window is not None and window < 1:
        raise ValueError(f"window must be None or >= 1, got {window}")
    if backend not in ("auto", "torch", "triton"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'triton', got {backend!r}")
    Tq, Tk = q.shape[2], k.shape[2]
    if Tq > Tk:
        raise ValueError(f"more queries than keys ({Tq} > {Tk}): queries must be the last Tq of the keys")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if window is not None and window >= Tk:
        window = None  # a window that covers every key is global attention
    if backend == "auto":
        backend = "triton" if _triton_applies(q, window) else "torch"
    if backend == "triton":
        return _attention_triton(q, k, v, window, kind, alibi_slopes, scale)
    return _attention_torch(q, k, v, window, kind, alibi_slopes, scale)


# -----------------------------------------------------------------------------
# PyTorch path: exact, any device and dtype, gradients through autograd.

def _attention_torch(q, k, v, window, kind, alibi_slopes, scale, block=128):
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    if window is None and kind == "softmax" and alibi_slopes is None and Tq in (1, Tk):
        # plain causal softmax: SDPA's fused kernels (flash on the GPU) are exact and fast.
        # SDPA's is_causal aligns the mask top-left, so it only matches our bottom-right
        # convention when Tq == Tk; a single query (decoding) sees every key anyway.
        return F.scaled_dot_product_attention(q, k, v, is_causal=(Tq == Tk), scale=scale)
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
        qb = q[:, :, q0:q1].to(compute_dtype)
        kb, vb = k[:, :, k0:k1].to(compute_dtype), v[:, :, k0:k1].to(compute_dtype)
        logits = scale * (qb @ kb.transpose(-1, -2))  # (B, H, bq, bk)
        if alibi_slopes is not None:
            logits = logits + alibi_slopes.to(compute_dtype).view(H, 1, 1) * dist
        if kind == "softmax":
            weights = logits.masked_fill(~visible, float("-inf")).softmax(dim=-1)
        else:
            weights = torch.sigmoid(logits).masked_fill(~visible, 0.0)
        outs.append(weights @ vb)  # (B, H, bq, D)
    return torch.cat(outs, dim=2).to(q.dtype)


def _triton_applies(q, window):
    # Placeholder until the Triton kernel lands: the PyTorch path everywhere.
    return False


def _attention_triton(q, k, v, window, kind, alibi_slopes, scale):
    raise NotImplementedError("the Triton kernel is not in this version; use backend='torch'")
