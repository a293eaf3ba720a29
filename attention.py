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

    attention_decode(q, k, v, key_pos, query_pos, kind="softmax", alibi_slopes=None, scale=None)

is the decoding step against a static-shape cache (model.KVCache), whose slots need not be in
position order (a window layer's cache is a ring): the same logits, with i - j from key_pos.
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
        backend = "triton" if _triton_applies(q, k, window, kind, alibi_slopes) else "torch"
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


def attention_decode(q, k, v, key_pos, query_pos, *, kind="softmax", alibi_slopes=None, scale=None):
    """One query per sequence against a static-shape KV cache: the decoding step of generation.

    q (B, H, 1, D) at absolute position query_pos, a (1,) tensor on q's device; k, v (B, H, S, D)
    cache slots, slot s holding the key of position key_pos[s] (S,), negative while still empty.
    Slots at positions after query_pos are not seen. The cache decides what a layer can see: all
    positions for a global layer, a ring of `window` slots for a window layer, so no window
    argument. Nothing here depends on the position's value on the host: every step runs the same
    kernels on the same shapes, which is what lets a CUDA graph capture it.
    Decoding reads the whole cache once per step and does little arithmetic on it, so it is bound
    by memory bandwidth: plain matmuls in the cache's dtype read it at full speed; the logits (a
    few per key) are then taken to float32 for the bias, mask and softmax. The price, in bf16:
    the logits are rounded to bf16 first, which the fused kernels avoid (a relative error of
    about 0.8% instead of 0.2% against float64, for 512 keys)."""
    H = q.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    dist = query_pos - key_pos  # (S,) i - j
    visible = (key_pos >= 0) & (dist >= 0)
    logits = q @ k.transpose(-1, -2)  # (B, H, 1, S)
    logits = scale * logits.to(torch.promote_types(logits.dtype, torch.float32))
    if alibi_slopes is not None:
        logits = logits + alibi_slopes.to(logits.dtype).view(H, 1, 1) * dist
    if kind == "softmax":
        weights = logits.masked_fill(~visible, float("-inf")).softmax(dim=-1)
    else:
        weights = torch.sigmoid(logits).masked_fill(~visible, 0.0)
    return weights.to(v.dtype) @ v  # (B, H, 1, D)


# -----------------------------------------------------------------------------
# Triton path: one fused kernel per pass, in the order of Triton's fused-attention tutorial.
# Positions are absolute: key j in [0, Tk), query row r at i = r + Tk - Tq. The logits live in
# base 2 (log2(e) folded into the scale and the slopes) so the kernels call exp2. Every pass
# visits only the blocks that meet the band j <= i < j + W, and splits them into boundary
# blocks (masked) and interior blocks (no mask, no bounds checks). Every tl.dot asks for "ieee":
# float32 inputs then stay float32 rather than tf32; half-precision inputs ignore it.

import os  # noqa: E402  (kept with the Triton section it serves)
from typing import Optional, Tuple  # noqa: E402

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_LOG2E = 1.4426950408889634
_GLOBAL = 1 << 30  # the window passed for global attention: larger than any distance i - j


# Sizes vary from call to call: compile once for all of them (strides stay specialised).
_jit_kernel = triton.jit(do_not_specialize=["H", "Tq", "Tk", "W"])


@triton.jit
def _key_phases(i0, Tk, W, BM: tl.constexpr, BN: tl.constexpr):
    # Key blocks (multiples of BN) seen by the queries i0..i0+BM-1: [start, mid) and [mid_end, hi)
    # need a mask, [mid, mid_end) is inside the band for every query of the block.
    i1 = i0 + BM - 1
    hi = tl.minimum(i1 + 1, Tk)
    start = tl.maximum(i0 - W + 1, 0) // BN * BN
    mid = tl.minimum(tl.cdiv(tl.maximum(i1 - W + 1, 0), BN) * BN, hi)
    mid_end = tl.maximum((i0 + 1) // BN * BN, mid)
    return start, mid, mid_end, hi


@triton.jit
def _logits(a, b, dist, qk_scale, slope, W, MASKED: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    # Base-2 logits of rows of a against rows of b, dist = i - j per element, in float32 (exact
    # below 2^24; an int tile would cost a conversion per element). Returns the weights for
    # sigmoid; for softmax the logits, -inf outside the band.
    s = tl.dot(a, tl.trans(b), input_precision="ieee") * qk_scale
    if HAS_ALIBI:
        s += slope * dist
    if SIGMOID:
        s = 1.0 / (1.0 + tl.exp2(-s))
        if MASKED:
            s = tl.where((dist >= 0) & (dist < W), s, 0.0)
    elif MASKED:
        s = tl.where((dist >= 0) & (dist < W), s, float("-inf"))
    return s


@triton.jit
def _load_rows(X, offs, stride, offs_d, n, MASKED: tl.constexpr):
    # rows `offs` of an (n, D) matrix; the bounds check only on blocks that can run past n
    if MASKED:
        x = tl.load(X + offs[:, None] * stride + offs_d[None, :], mask=offs[:, None] < n, other=0.0)
    else:
        x = tl.load(X + offs[:, None] * stride + offs_d[None, :])
    return x


@triton.jit
def _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, lo, hi, Tk, W, qk_scale, slope,
               BN: tl.constexpr, MASKED: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    for n0 in range(lo, hi, BN):
        offs_j = n0 + tl.arange(0, BN)
        k = _load_rows(K, offs_j, skt, offs_d, Tk, MASKED)
        v = _load_rows(V, offs_j, svt, offs_d, Tk, MASKED)
        dist = fi[:, None] - offs_j[None, :].to(tl.float32)
        p = _logits(q, k, dist, qk_scale, slope, W, MASKED, HAS_ALIBI, SIGMOID)
        if not SIGMOID:
            # m_i starts finite, so a row whose first block is all masked gets p = 0, not NaN
            m_new = tl.maximum(m_i, tl.max(p, 1))
            p = tl.exp2(p - m_new[:, None])
            alpha = tl.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            m_i = m_new
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision="ieee")
    return acc, m_i, l_i


@_jit_kernel
def _attn_fwd(Q, K, V, O, LSE, SLOPES, sqb, sqh, sqt, skb, skh, skt, svb, svh, svt, sob, soh, sot,
              H, Tq, Tk, W, qk_scale, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
              HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    m0, bh = tl.program_id(0) * BM, tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    K += b * skb + h * skh
    V += b * svb + h * svh
    O += b * sob + h * soh
    offs_r = m0 + tl.arange(0, BM)
    fi = (offs_r + (Tk - Tq)).to(tl.float32)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + offs_r[:, None] * sqt + offs_d[None, :], mask=offs_r[:, None] < Tq, other=0.0)
    slope = tl.load(SLOPES + h) * 1.4426950408889634 if HAS_ALIBI else 0.0
    acc = tl.zeros([BM, D], dtype=tl.float32)
    m_i = tl.full([BM], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BM], dtype=tl.float32)
    start, mid, mid_end, hi = _key_phases(m0 + Tk - Tq, Tk, W, BM, BN)
    acc, m_i, l_i = _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, start, mid, Tk, W, qk_scale,
                               slope, BN, True, HAS_ALIBI, SIGMOID)
    acc, m_i, l_i = _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, mid, mid_end, Tk, W, qk_scale,
                               slope, BN, False, HAS_ALIBI, SIGMOID)
    acc, m_i, l_i = _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, mid_end, hi, Tk, W, qk_scale,
                               slope, BN, True, HAS_ALIBI, SIGMOID)
    if not SIGMOID:
        l_i = tl.where(offs_r < Tq, l_i, 1.0)  # rows past Tq saw nothing: keep them finite
        acc = acc / l_i[:, None]
        tl.store(LSE + bh * Tq + offs_r, m_i + tl.log2(l_i), mask=offs_r < Tq)
    tl.store(O + offs_r[:, None] * sot + offs_d[None, :], acc.to(O.dtype.element_ty), mask=offs_r[:, None] < Tq)


@triton.jit
def _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, lo, hi, Tk, W, qk_scale, slope,
              BN: tl.constexpr, MASKED: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    for n0 in range(lo, hi, BN):
        offs_j = n0 + tl.arange(0, BN)
        k = _load_rows(K, offs_j, skt, offs_d, Tk, MASKED)
        v = _load_rows(V, offs_j, svt, offs_d, Tk, MASKED)
        dist = fi[:, None] - offs_j[None, :].to(tl.float32)
        p = _logits(q, k, dist, qk_scale, slope, W, MASKED, HAS_ALIBI, SIGMOID)
        dp = tl.dot(do, tl.trans(v), input_precision="ieee")
        if SIGMOID:
            ds = p * (1.0 - p) * dp
        else:
            ds = tl.exp2(p - lse[:, None]) * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision="ieee")
    return dq


@_jit_kernel
def _attn_bwd_dq(Q, K, V, O, DO, DQ, LSE, DELTA, SLOPES, sqb, sqh, sqt, skb, skh, skt, svb, svh, svt,
                 sob, soh, sot, sdob, sdoh, sdot, sdqb, sdqh, sdqt, H, Tq, Tk, W, qk_scale, scale,
                 D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HAS_ALIBI: tl.constexpr,
                 SIGMOID: tl.constexpr):
    # Also the backward's preprocess: delta = rowsum(dO * O) for this query block, stored for
    # the dK/dV kernel that runs next.
    m0, bh = tl.program_id(0) * BM, tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    K += b * skb + h * skh
    V += b * svb + h * svh
    offs_r = m0 + tl.arange(0, BM)
    fi = (offs_r + (Tk - Tq)).to(tl.float32)
    offs_d = tl.arange(0, D)
    row_ok = offs_r[:, None] < Tq
    q = tl.load(Q + offs_r[:, None] * sqt + offs_d[None, :], mask=row_ok, other=0.0)
    do = tl.load(DO + b * sdob + h * sdoh + offs_r[:, None] * sdot + offs_d[None, :], mask=row_ok, other=0.0)
    slope = tl.load(SLOPES + h) * 1.4426950408889634 if HAS_ALIBI else 0.0
    lse = tl.zeros([BM], dtype=tl.float32)
    delta = tl.zeros([BM], dtype=tl.float32)
    if not SIGMOID:
        o = tl.load(O + b * sob + h * soh + offs_r[:, None] * sot + offs_d[None, :], mask=row_ok, other=0.0)
        delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
        tl.store(DELTA + bh * Tq + offs_r, delta, mask=offs_r < Tq)
        lse = tl.load(LSE + bh * Tq + offs_r, mask=offs_r < Tq, other=0.0)
    dq = tl.zeros([BM, D], dtype=tl.float32)
    start, mid, mid_end, hi = _key_phases(m0 + Tk - Tq, Tk, W, BM, BN)
    dq = _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, start, mid, Tk, W, qk_scale, slope,
                   BN, True, HAS_ALIBI, SIGMOID)
    dq = _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, mid, mid_end, Tk, W, qk_scale, slope,
                   BN, False, HAS_ALIBI, SIGMOID)
    dq = _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, mid_end, hi, Tk, W, qk_scale, slope,
                   BN, True, HAS_ALIBI, SIGMOID)
    DQ += b * sdqb + h * sdqh
    tl.store(DQ + offs_r[:, None] * sdqt + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty), mask=row_ok)


@triton.jit
def _dkdv_inner(dk, dv, k, v, Q, DO, LSE, DELTA, sqt, sdot, fj, offs_d, lo, hi, Tq, Tk, W, qk_scale, slope,
                BM: tl.constexpr, MASKED: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    # Transposed tiles (keys x queries), as in the tutorial: dV += P^T dO, dK += dS^T Q.
    for r0 in range(lo, hi, BM):
        offs_r = r0 + tl.arange(0, BM)
        q = _load_rows(Q, offs_r, sqt, offs_d, Tq, MASKED)
        do = _load_rows(DO, offs_r, sdot, offs_d, Tq, MASKED)
        if MASKED:  # rows past Tq must not reach the sums over queries, not even as 0 * inf
            offs_i = tl.where(offs_r < Tq, offs_r + (Tk - Tq), -W)  # out of every band
        else:
            offs_i = offs_r + (Tk - Tq)
        distT = offs_i[None, :].to(tl.float32) - fj[:, None]
        pT = _logits(k, q, distT, qk_scale, slope, W, MASKED, HAS_ALIBI, SIGMOID)
        dpT = tl.dot(v, tl.trans(do), input_precision="ieee")
        if SIGMOID:
            dsT = pT * (1.0 - pT) * dpT
        else:
            lse = tl.load(LSE + offs_r, mask=offs_r < Tq, other=0.0)
            delta = tl.load(DELTA + offs_r, mask=offs_r < Tq, other=0.0)
            pT = tl.exp2(pT - lse[None, :])
            dsT = pT * (dpT - delta[None, :])
        dv = tl.dot(pT.to(do.dtype), do, dv, input_precision="ieee")
        dk = tl.dot(dsT.to(q.dtype), q, dk, input_precision="ieee")
    return dk, dv


@_jit_kernel
def _attn_bwd_dkdv(Q, K, V, DO, DK, DV, LSE, DELTA, SLOPES, sqb, sqh, sqt, skb, skh, skt, svb, svh, svt,
                   sdob, sdoh, sdot, sdkb, sdkh, sdkt, sdvb, sdvh, sdvt, H, Tq, Tk, W, qk_scale, scale,
                   D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HAS_ALIBI: tl.constexpr,
                   SIGMOID: tl.constexpr):
    n0, bh = tl.program_id(0) * BN, tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    offs_j = n0 + tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    col_ok = offs_j[:, None] < Tk
    k = tl.load(K + b * skb + h * skh + offs_j[:, None] * skt + offs_d[None, :], mask=col_ok, other=0.0)
    v = tl.load(V + b * svb + h * svh + offs_j[:, None] * svt + offs_d[None, :], mask=col_ok, other=0.0)
    slope = tl.load(SLOPES + h) * 1.4426950408889634 if HAS_ALIBI else 0.0
    fj = offs_j.to(tl.float32)
    dk = tl.zeros([BN, D], dtype=tl.float32)
    dv = tl.zeros([BN, D], dtype=tl.float32)
    # Query rows r (position i = r + off) that see keys n0..n0+BN-1: n0 <= i <= n0 + BN - 2 + W.
    # Blocks of rows (multiples of BM): [start, mid) near the diagonal and [mid_end, r_hi) at
    # the window's far edge (or past Tq) are masked; [mid, mid_end) sees every key of the block.
    off = Tk - Tq
    r_hi = tl.maximum(tl.minimum(n0 + BN - 1 + W - off, Tq), 0)
    start = tl.maximum(n0 - off, 0) // BM * BM
    mid = tl.minimum(tl.maximum(tl.cdiv(tl.maximum(n0 + BN - 1 - off, 0), BM) * BM, start), r_hi)
    mid_end = tl.maximum(tl.minimum(tl.maximum(n0 + W - off, 0) // BM * BM, Tq // BM * BM), mid)
    Q += b * sqb + h * sqh
    DO += b * sdob + h * sdoh
    LSE += bh * Tq
    DELTA += bh * Tq
    dk, dv = _dkdv_inner(dk, dv, k, v, Q, DO, LSE, DELTA, sqt, sdot, fj, offs_d, start, mid, Tq, Tk, W,
                         qk_scale, slope, BM, True, HAS_ALIBI, SIGMOID)
    dk, dv = _dkdv_inner(dk, dv, k, v, Q, DO, LSE, DELTA, sqt, sdot, fj, offs_d, mid, mid_end, Tq, Tk, W,
                         qk_scale, slope, BM, False, HAS_ALIBI, SIGMOID)
    dk, dv = _dkdv_inner(dk, dv, k, v, Q, DO, LSE, DELTA, sqt, sdot, fj, offs_d, mid_end, r_hi, Tq, Tk, W,
                         qk_scale, slope, BM, True, HAS_ALIBI, SIGMOID)
    DK += b * sdkb + h * sdkh
    DV += b * sdvb + h * sdvh
    tl.store(DK + offs_j[:, None] * sdkt + offs_d[None, :], (dk * scale).to(DK.dtype.element_ty), mask=col_ok)
    tl.store(DV + offs_j[:, None] * sdvt + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=col_ok)


# (BM, BN, num_warps, num_stages) per pass; BM counts queries and BN keys in every pass. The H100
# sweep (notes/kernel.md) chose the same small tiles for D=64 and D=128: with a window, smaller
# tiles waste less on the masked band edges than bigger tiles gain in matrix-unit efficiency.
_CONFIGS = {"fwd": (64, 64, 4, 3), "dq": (64, 32, 4, 3), "dkdv": (32, 64, 4, 3)}


def _config(pass_, dtype):
    if _INTERPRET:  # small and lopsided, so that the CPU tests cross many block edges quickly
        bm, bn = (16, 32) if pass_ == "dkdv" else (32, 16)
        return dict(BM=bm, BN=bn, num_warps=4, num_stages=1)
    bm, bn, warps, stages = _CONFIGS[pass_]
    if dtype == torch.float32:  # twice the bytes per tile: fewer stages keep shared memory in bounds
        stages = 2
    return dict(BM=bm, BN=bn, num_warps=warps, num_stages=stages)


def _strides(*tensors):
    return [s for t in tensors for s in t.stride()[:3]]


# The autograd wiring is a pair of custom ops rather than an autograd.Function: torch.compile
# then keeps each as one opaque node of its graph (no graph break) and never re-compiles the
# kernels through Inductor, which failed on them (notes/kernel.md). Named after the module, so
# that running this file as __main__ and importing it do not register the same op twice.
_NS = "swan_" + __name__.replace(".", "_")


@torch.library.custom_op(f"{_NS}::attention_fwd", mutates_args=())
def _fwd_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: Optional[torch.Tensor], W: int,
            sigmoid: bool, scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
    B, H, Tq, D = q.shape
    o = torch.empty_like(q)
    lse = q.new_zeros(1, dtype=torch.float32) if sigmoid else q.new_empty(B * H, Tq, dtype=torch.float32)
    cfg = _config("fwd", q.dtype)
    _attn_fwd[(triton.cdiv(Tq, cfg["BM"]), B * H)](
        q, k, v, o, lse, lse if slopes is None else slopes, *_strides(q, k, v, o), H, Tq, k.shape[2], W,
        scale * _LOG2E, D=D, HAS_ALIBI=slopes is not None, SIGMOID=sigmoid, **cfg)
    return o, lse


@torch.library.custom_op(f"{_NS}::attention_bwd", mutates_args=())
def _bwd_op(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
            slopes: Optional[torch.Tensor], W: int, sigmoid: bool,
            scale: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    do = do if do.stride(-1) == 1 else do.contiguous()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    delta = torch.empty_like(lse)
    flags = dict(D=D, HAS_ALIBI=slopes is not None, SIGMOID=sigmoid)
    slopes = lse if slopes is None else slopes  # any pointer: not read without ALiBi
    cfg = _config("dq", q.dtype)  # runs first: it also writes delta for the dK/dV pass
    _attn_bwd_dq[(triton.cdiv(Tq, cfg["BM"]), B * H)](
        q, k, v, o, do, dq, lse, delta, slopes, *_strides(q, k, v, o, do, dq), H, Tq, Tk, W, scale * _LOG2E,
        scale, **flags, **cfg)
    cfg = _config("dkdv", q.dtype)
    _attn_bwd_dkdv[(triton.cdiv(Tk, cfg["BN"]), B * H)](
        q, k, v, do, dk, dv, lse, delta, slopes, *_strides(q, k, v, do, dk, dv), H, Tq, Tk, W, scale * _LOG2E,
        scale, **flags, **cfg)
    return dq, dk, dv


@_fwd_op.register_fake
def _(q, k, v, slopes, W, sigmoid, scale):
    lse_shape = (1,) if sigmoid else (q.shape[0] * q.shape[1], q.shape[2])  # sigmoid has no lse
    return torch.empty_like(q), q.new_empty(lse_shape, dtype=torch.float32)


@_bwd_op.register_fake
def _(do, q, k, v, o, lse, slopes, W, sigmoid, scale):
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx, inputs, output):
    q, k, v, slopes, W, sigmoid, scale = inputs
    ctx.save_for_backward(q, k, v, *output, slopes)
    ctx.meta = (W, sigmoid, scale)


def _backward(ctx, do, _dlse):
    return (*_bwd_op(do, *ctx.saved_tensors, *ctx.meta), None, None, None, None)


_fwd_op.register_autograd(_backward, setup_context=_setup_context)


def _triton_applies(q, k, window, kind, alibi_slopes):
    if not q.is_cuda or q.shape[-1] not in (16, 32, 64, 128) or q.dtype == torch.float64:
        return False
    # Plain global softmax over all keys (or one query) is SDPA's flash kernel in the torch path,
    # measured faster than this kernel on the H100 (notes/kernel.md). Everything else is ours.
    plain_global = window is None and kind == "softmax" and alibi_slopes is None
    return not (plain_global and q.shape[2] in (1, k.shape[2]))


def _attention_triton(q, k, v, window, kind, alibi_slopes, scale):
    # The ALiBi slopes are constants here: no gradient flows to them.
    if q.shape[-1] not in (16, 32, 64, 128):
        raise ValueError(f"the Triton kernel takes head dims 16, 32, 64 or 128, got {q.shape[-1]}")
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    if alibi_slopes is not None:
        alibi_slopes = alibi_slopes.detach().to(device=q.device, dtype=torch.float32).contiguous()
    return _fwd_op(q, k, v, alibi_slopes, _GLOBAL if window is None else window, kind == "sigmoid", scale)[0]


# -----------------------------------------------------------------------------
# Benchmark (GPU): python attention.py [--quick]. Every rate is counted on the window's FLOPs,
# 4 * D * sum_i min(i + 1, W) per head forward and 2.5x that backward, whatever a kernel computes.

if __name__ == "__main__":
    import sys
    import warnings

    warnings.simplefilter("ignore")  # flex's and torch.compile's notices would split the table

    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    from triton.testing import do_bench

    quick = "--quick" in sys.argv
    shapes = [(8, 12, 4096, 64, 512), (2, 12, 16384, 64, 512), (1, 12, 65536, 64, 512), (8, 16, 4096, 128, 512),
              (2, 16, 16384, 128, 1024)]
    shapes = [(4, 12, 4096, 64, 512), (2, 16, 4096, 128, 1024)] if quick else shapes
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}, bf16")
    flex = torch.compile(flex_attention)

    def timed(fn, q, k, v, do):  # (forward ms, forward+backward ms), "oom" where memory ran out
        try:
            # a long warm-up: after compiles the GPU has idled and its clock must ramp up again
            fwd = do_bench(lambda: fn(q, k, v), warmup=250, return_mode="median")
            both = do_bench(lambda: torch.autograd.grad(fn(q, k, v), (q, k, v), do), warmup=250, return_mode="median")
            return fwd, both
        except torch.OutOfMemoryError:
            return "oom", "oom"
        finally:
            torch.cuda.empty_cache()

    names = ["triton", "flex", "sdpa causal", "sdpa mask", "torch", "sig+alibi"]  # the last: triton, SWAT's mode
    table = []
    for B, H, T, D, W in shapes:
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v, do = (torch.randn(B, H, T, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(4))
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        slopes = torch.tensor([(-1) ** h * 2.0 ** -(h // 2 + 1) for h in range(H)], device="cuda")
        flops = 4 * D * B * H * (W * (W + 1) // 2 + (T - W) * W)
        block_mask = create_block_mask(lambda b, h, i, j: (i - j >= 0) & (i - j < W), None, None, T, T,
                                       device="cuda", _compile=True)

        def sdpa_mask(q, k, v, mask=[]):  # the T x T mask is built once, on first use (it may not fit)
            if not mask:
                i = torch.arange(T, device="cuda")
                mask.append((i[:, None] - i[None, :] >= 0) & (i[:, None] - i[None, :] < W))
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0])

        fns = [lambda q, k, v: attention(q, k, v, window=W, backend="triton"),
               lambda q, k, v: flex(q, k, v, block_mask=block_mask),
               lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
               sdpa_mask,
               lambda q, k, v: _attention_torch(q, k, v, W, "softmax", None, D**-0.5),
               lambda q, k, v: attention(q, k, v, window=W, kind="sigmoid", alibi_slopes=slopes, backend="triton")]
        for fn in fns:  # compile everything for this shape first: no compile workers busy while timing
            try:
                torch.autograd.grad(fn(q, k, v), (q, k, v), do)
            except torch.OutOfMemoryError:
                pass
            torch.cuda.synchronize()
        times = [timed(fn, q, k, v, do) for fn in fns]
        errs = []
        for kind, sl in [("softmax", None), ("sigmoid", slopes)]:  # against float32 through the torch path
            ours = attention(q, k, v, window=W, kind=kind, alibi_slopes=sl, backend="triton")
            ours = [ours, *torch.autograd.grad(ours, (q, k, v), do)]
            q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
            ref = _attention_torch(q32, k32, v32, W, kind, sl, D**-0.5)
            ref = [ref, *torch.autograd.grad(ref, (q32, k32, v32), do.float())]
            errs.append(max(((a.float() - b).norm() / b.norm()).item() for a, b in zip(ours, ref)))
            del ours, ref, q32, k32, v32
            torch.cuda.empty_cache()
        table.append(((B, H, T, D, W), flops, times, errs))

    def cell(ms, flops):
        return f"{'oom':>14}" if ms == "oom" else f"{ms:8.3f} {flops / ms / 1e9:5.0f}"

    print("\nms and TFLOP/s (window FLOPs). err: max over out, dq, dk, dv of |ours - ref| / |ref|, ref in float32")
    print(f"{'B,H,T,D,W':<22} {'pass':<7}" + "".join(f"{n:>15}" for n in names)
          + "  flex/ours sig/soft  err soft   err sig")
    for shape, flops, times, errs in table:
        for p, (label, mult) in enumerate([("fwd", 1.0), ("fwd+bwd", 3.5)]):
            ts = [t[p] for t in times]
            err = f"{errs[0]:10.1e}{errs[1]:10.1e}" if p else ""
            print(f"{str(shape).replace(' ', ''):<22} {label:<7}" + "".join(f" {cell(t, flops * mult)}" for t in ts)
                  + f"{ts[1] / ts[0]:11.2f}{ts[5] / ts[0]:9.2f}" + err)

    # Global causal layers (what _triton_applies chooses for window=None): causal FLOPs here.
    print("\nglobal causal, ms and TFLOP/s on causal FLOPs")
    print(f"{'B,H,T,D':<22} {'pass':<7}{'triton':>15}{'sdpa causal':>15}")
    for B, H, T, D in [(8, 12, 4096, 64)] if quick else [(8, 12, 4096, 64), (2, 16, 16384, 128)]:
        q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        flops = 2 * D * B * H * T * (T + 1)
        ours = timed(lambda q, k, v: attention(q, k, v, backend="triton"), q, k, v, do)
        sdpa = timed(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v, do)
        for p, (label, mult) in enumerate([("fwd", 1.0), ("fwd+bwd", 3.5)]):
            print(f"{str((B, H, T, D)).replace(' ', ''):<22} {label:<7} {cell(ours[p], flops * mult)}"
                  f" {cell(sdpa[p], flops * mult)}")
