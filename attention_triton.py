"""
The sliding-window attention of attention.py as fused Triton kernels for the GPU: forward, dQ and
dK/dV passes, in the order of Triton's fused-attention tutorial, wired as torch custom ops so that
torch.compile keeps them as single nodes of its graph. The contract (masks, logits, softmax vs
sigmoid) is attention.py's docstring; the PyTorch path there is the reference these kernels equal.

Positions are absolute: key j in [0, Tk), query row r at i = r + Tk - Tq. The logits live in base 2
(log2(e) folded into the scale and the slopes on the host) so the kernels call exp2. Every pass
visits only the blocks that meet the band j <= i < j + W, in one loop, and masks only the
boundary blocks at the band's two edges: a branch that every thread of a program takes the same
way, so the interior blocks skip the mask's compares and selects. (With softmax this takes
10-19% less time forward and 6-13% less forward+backward than the earlier form, three loops of
boundary, interior and boundary blocks: each loop is software-pipelined on its own, with its own
prologue of loads and its own registers; notes/kernel.md.) Every tl.dot asks for "ieee":
float32 inputs then stay float32 rather than tf32; half-precision inputs ignore it.

Grouped-query attention (k, v with Hkv = H / G heads): every program of the forward and dQ passes
serves one query head h and reads key/value head h // G through the kv tensors' head stride; the
dK/dV pass runs one program per key block of a kv head and loops over the G query heads of its
group, so each kv gradient is summed in registers and stored once. No copies of k, v, dK or dV.

Layout: imports and constants, the kernels and their inlined helpers, the host launchers, the
custom-op wiring, and last the public entry, window_attention_triton. Benchmark: bench_attention.py.
"""

import os
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl

HEAD_DIMS = (16, 32, 64, 128)  # what the kernels take: tl.arange needs a power of two, tl.dot >= 16
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_LOG2E = 1.4426950408889634
_GLOBAL = 1 << 30  # the window passed for global attention: larger than any distance i - j


# -----------------------------------------------------------------------------
# kernels

# Sizes vary from call to call: compile once for all of them (strides stay specialised). The
# group size G is a model constant and stays specialised too: G = 1 compiles as before GQA.
_jit_kernel = triton.jit(do_not_specialize=["H", "Tq", "Tk", "W"])


@triton.jit
def _key_phases(i0, Tk, W, BM: tl.constexpr, BN: tl.constexpr):
    # Key blocks (multiples of BN) seen by the queries i0..i0+BM-1 run from start to hi; those in
    # [start, mid) and [mid_end, hi) need a mask, [mid, mid_end) is inside the band for every
    # query of the block.
    i1 = i0 + BM - 1
    hi = tl.minimum(i1 + 1, Tk)
    start = tl.maximum(i0 - W + 1, 0) // BN * BN
    mid = tl.minimum(tl.cdiv(tl.maximum(i1 - W + 1, 0), BN) * BN, hi)
    mid_end = tl.maximum((i0 + 1) // BN * BN, mid)
    return start, mid, mid_end, hi


@triton.jit
def _logits(a, b, dist, qk_scale, slope, W, masked, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    # Base-2 logits of rows of a against rows of b, dist = i - j per element, in float32 (exact
    # below 2^24; an int tile would cost a conversion per element). Returns the weights for
    # sigmoid; for softmax the logits, -inf outside the band. masked: whether the block crosses
    # the band's edge (a scalar, the same for the whole program).
    s = tl.dot(a, tl.trans(b), input_precision="ieee") * qk_scale
    if HAS_ALIBI:
        s += slope * dist
    if masked:  # -inf: a softmax weight exp2(-inf) = 0, a sigmoid weight 1 / (1 + exp2(inf)) = 0
        s = tl.where((dist >= 0) & (dist < W), s, float("-inf"))
    if SIGMOID:
        s = 1.0 / (1.0 + tl.exp2(-s))
    return s


@triton.jit
def _load_rows(X, offs, stride, offs_d, n):
    # rows `offs` of an (n, D) matrix, zeros past n (a predicate per row: no cost worth a branch)
    return tl.load(X + offs[:, None] * stride + offs_d[None, :], mask=offs[:, None] < n, other=0.0)


@triton.jit
def _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, lo, mid, mid_end, hi, Tk, W, qk_scale, slope,
               BN: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    for n0 in range(lo, hi, BN):
        offs_j = n0 + tl.arange(0, BN)
        k = _load_rows(K, offs_j, skt, offs_d, Tk)
        v = _load_rows(V, offs_j, svt, offs_d, Tk)
        dist = fi[:, None] - offs_j[None, :].to(tl.float32)
        p = _logits(q, k, dist, qk_scale, slope, W, (n0 < mid) | (n0 >= mid_end), HAS_ALIBI, SIGMOID)
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
              H, G, Tq, Tk, W, qk_scale, D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
              HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    m0, bh = tl.program_id(0) * BM, tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    K += b * skb + (h // G) * skh  # the kv head of query head h
    V += b * svb + (h // G) * svh
    O += b * sob + h * soh
    offs_r = m0 + tl.arange(0, BM)
    fi = (offs_r + (Tk - Tq)).to(tl.float32)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + offs_r[:, None] * sqt + offs_d[None, :], mask=offs_r[:, None] < Tq, other=0.0)
    slope = tl.load(SLOPES + h) if HAS_ALIBI else 0.0  # base 2 already
    acc = tl.zeros([BM, D], dtype=tl.float32)
    m_i = tl.full([BM], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BM], dtype=tl.float32)
    start, mid, mid_end, hi = _key_phases(m0 + Tk - Tq, Tk, W, BM, BN)
    acc, m_i, l_i = _fwd_inner(acc, m_i, l_i, q, K, V, skt, svt, fi, offs_d, start, mid, mid_end, hi, Tk, W,
                               qk_scale, slope, BN, HAS_ALIBI, SIGMOID)
    if not SIGMOID:
        l_i = tl.where(offs_r < Tq, l_i, 1.0)  # rows past Tq saw nothing: keep them finite
        acc = acc / l_i[:, None]
        tl.store(LSE + bh * Tq + offs_r, m_i + tl.log2(l_i), mask=offs_r < Tq)
    tl.store(O + offs_r[:, None] * sot + offs_d[None, :], acc.to(O.dtype.element_ty), mask=offs_r[:, None] < Tq)


@triton.jit
def _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, lo, mid, mid_end, hi, Tk, W, qk_scale, slope,
              BN: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    for n0 in range(lo, hi, BN):
        offs_j = n0 + tl.arange(0, BN)
        k = _load_rows(K, offs_j, skt, offs_d, Tk)
        v = _load_rows(V, offs_j, svt, offs_d, Tk)
        dist = fi[:, None] - offs_j[None, :].to(tl.float32)
        p = _logits(q, k, dist, qk_scale, slope, W, (n0 < mid) | (n0 >= mid_end), HAS_ALIBI, SIGMOID)
        dp = tl.dot(do, tl.trans(v), input_precision="ieee")
        if SIGMOID:
            ds = p * (1.0 - p) * dp
        else:
            ds = tl.exp2(p - lse[:, None]) * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision="ieee")
    return dq


@_jit_kernel
def _attn_bwd_dq(Q, K, V, O, DO, DQ, LSE, DELTA, SLOPES, sqb, sqh, sqt, skb, skh, skt, svb, svh, svt,
                 sob, soh, sot, sdob, sdoh, sdot, sdqb, sdqh, sdqt, H, G, Tq, Tk, W, qk_scale, scale,
                 D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HAS_ALIBI: tl.constexpr,
                 SIGMOID: tl.constexpr):
    # Also the backward's preprocess: delta = rowsum(dO * O) for this query block, stored for
    # the dK/dV kernel that runs next.
    m0, bh = tl.program_id(0) * BM, tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    Q += b * sqb + h * sqh
    K += b * skb + (h // G) * skh  # the kv head of query head h
    V += b * svb + (h // G) * svh
    offs_r = m0 + tl.arange(0, BM)
    fi = (offs_r + (Tk - Tq)).to(tl.float32)
    offs_d = tl.arange(0, D)
    row_ok = offs_r[:, None] < Tq
    q = tl.load(Q + offs_r[:, None] * sqt + offs_d[None, :], mask=row_ok, other=0.0)
    do = tl.load(DO + b * sdob + h * sdoh + offs_r[:, None] * sdot + offs_d[None, :], mask=row_ok, other=0.0)
    slope = tl.load(SLOPES + h) if HAS_ALIBI else 0.0  # base 2 already
    lse = tl.zeros([BM], dtype=tl.float32)
    delta = tl.zeros([BM], dtype=tl.float32)
    if not SIGMOID:
        o = tl.load(O + b * sob + h * soh + offs_r[:, None] * sot + offs_d[None, :], mask=row_ok, other=0.0)
        delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
        tl.store(DELTA + bh * Tq + offs_r, delta, mask=offs_r < Tq)
        lse = tl.load(LSE + bh * Tq + offs_r, mask=offs_r < Tq, other=0.0)
    dq = tl.zeros([BM, D], dtype=tl.float32)
    start, mid, mid_end, hi = _key_phases(m0 + Tk - Tq, Tk, W, BM, BN)
    dq = _dq_inner(dq, q, do, lse, delta, K, V, skt, svt, fi, offs_d, start, mid, mid_end, hi, Tk, W, qk_scale,
                   slope, BN, HAS_ALIBI, SIGMOID)
    DQ += b * sdqb + h * sdqh
    tl.store(DQ + offs_r[:, None] * sdqt + offs_d[None, :], (dq * scale).to(DQ.dtype.element_ty), mask=row_ok)


@triton.jit
def _dkdv_inner(dk, dv, k, v, Q, DO, LSE, DELTA, sqt, sdot, fj, offs_d, lo, mid, mid_end, hi, Tq, Tk, W, qk_scale,
                slope, BM: tl.constexpr, HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr):
    # Transposed tiles (keys x queries), as in the tutorial: dV += P^T dO, dK += dS^T Q.
    for r0 in range(lo, hi, BM):
        offs_r = r0 + tl.arange(0, BM)
        q = _load_rows(Q, offs_r, sqt, offs_d, Tq)
        do = _load_rows(DO, offs_r, sdot, offs_d, Tq)
        # rows past Tq are out of every band (they are in the last block, a masked one): they must
        # not reach the sums over queries, not even as 0 * inf
        offs_i = tl.where(offs_r < Tq, offs_r + (Tk - Tq), -W)
        distT = offs_i[None, :].to(tl.float32) - fj[:, None]
        pT = _logits(k, q, distT, qk_scale, slope, W, (r0 < mid) | (r0 >= mid_end), HAS_ALIBI, SIGMOID)
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
                   sdob, sdoh, sdot, sdkb, sdkh, sdkt, sdvb, sdvh, sdvt, H, G, Tq, Tk, W, qk_scale, scale,
                   D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HAS_ALIBI: tl.constexpr,
                   SIGMOID: tl.constexpr):
    # One program per key block of one kv head hk. Its gradient is the sum over the G query heads
    # hk * G + g that read it: the loop over g below accumulates them in registers, so dK and dV
    # are written once, with no atomics and no per-query-head copies to reduce afterwards.
    n0, bhk = tl.program_id(0) * BN, tl.program_id(1)
    Hkv = H // G
    b, hk = (bhk // Hkv).to(tl.int64), (bhk % Hkv).to(tl.int64)
    offs_j = n0 + tl.arange(0, BN)
    offs_d = tl.arange(0, D)
    col_ok = offs_j[:, None] < Tk
    k = tl.load(K + b * skb + hk * skh + offs_j[:, None] * skt + offs_d[None, :], mask=col_ok, other=0.0)
    v = tl.load(V + b * svb + hk * svh + offs_j[:, None] * svt + offs_d[None, :], mask=col_ok, other=0.0)
    fj = offs_j.to(tl.float32)
    dk = tl.zeros([BN, D], dtype=tl.float32)
    dv = tl.zeros([BN, D], dtype=tl.float32)
    # Query rows r (position i = r + off) that see keys n0..n0+BN-1: n0 <= i <= n0 + BN - 2 + W.
    # Blocks of rows (multiples of BM) from start to r_hi: those in [start, mid) near the diagonal
    # and [mid_end, r_hi) at the window's far edge (or past Tq) are masked; [mid, mid_end) sees
    # every key of the block.
    off = Tk - Tq
    r_hi = tl.maximum(tl.minimum(n0 + BN - 1 + W - off, Tq), 0)
    start = tl.maximum(n0 - off, 0) // BM * BM
    mid = tl.minimum(tl.maximum(tl.cdiv(tl.maximum(n0 + BN - 1 - off, 0), BM) * BM, start), r_hi)
    mid_end = tl.maximum(tl.minimum(tl.maximum(n0 + W - off, 0) // BM * BM, Tq // BM * BM), mid)
    for g in range(G):  # the rows each query head sees are the same: the phases above serve all
        h = hk * G + g
        slope = tl.load(SLOPES + h) if HAS_ALIBI else 0.0  # base 2 already
        Qh, DOh = Q + b * sqb + h * sqh, DO + b * sdob + h * sdoh
        LSEh, DELTAh = LSE + (b * H + h) * Tq, DELTA + (b * H + h) * Tq
        dk, dv = _dkdv_inner(dk, dv, k, v, Qh, DOh, LSEh, DELTAh, sqt, sdot, fj, offs_d, start, mid, mid_end, r_hi,
                             Tq, Tk, W, qk_scale, slope, BM, HAS_ALIBI, SIGMOID)
    DK += b * sdkb + hk * sdkh
    DV += b * sdvb + hk * sdvh
    tl.store(DK + offs_j[:, None] * sdkt + offs_d[None, :], (dk * scale).to(DK.dtype.element_ty), mask=col_ok)
    tl.store(DV + offs_j[:, None] * sdvt + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=col_ok)


# -----------------------------------------------------------------------------
# host launchers and the custom-op wiring

# (BM, BN, num_warps, num_stages) per pass; BM counts queries and BN keys in every pass. The H100
# sweeps (notes/kernel.md) chose the same small tiles for D=64 and D=128: with a window, smaller
# tiles waste less on the masked band edges than bigger tiles gain in matrix-unit efficiency.
# dK/dV keeps two accumulators of (BN, D) in registers: a third stage of loads made it spill.
_CONFIGS = {"fwd": (64, 64, 4, 3), "dq": (64, 32, 4, 3), "dkdv": (32, 64, 4, 2)}


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
# kernels through Inductor, which failed on them (notes/kernel.md).


def _fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, slopes: Optional[torch.Tensor], W: int,
         sigmoid: bool, scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
    B, H, Tq, D = q.shape
    G = H // k.shape[1]  # query heads per kv head
    o = torch.empty_like(q)
    lse = q.new_zeros(1, dtype=torch.float32) if sigmoid else q.new_empty(B * H, Tq, dtype=torch.float32)
    cfg = _config("fwd", q.dtype)
    _attn_fwd[(triton.cdiv(Tq, cfg["BM"]), B * H)](
        q, k, v, o, lse, lse if slopes is None else slopes, *_strides(q, k, v, o), H, G, Tq, k.shape[2], W,
        scale * _LOG2E, D=D, HAS_ALIBI=slopes is not None, SIGMOID=sigmoid, **cfg)
    return o, lse


# The op torch.compile and autograd see. Called eagerly it costs a dispatch on the host per call,
# which a short prompt's prefill notices (window_attention_triton skips it where nothing needs it).
_fwd_op = torch.library.custom_op("swan::window_attention_fwd", _fwd, mutates_args=())


@torch.library.custom_op("swan::window_attention_bwd", mutates_args=())
def _bwd_op(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor, lse: torch.Tensor,
            slopes: Optional[torch.Tensor], W: int, sigmoid: bool,
            scale: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    B, H, Tq, D = q.shape
    Hkv, Tk = k.shape[1], k.shape[2]
    do = do if do.stride(-1) == 1 else do.contiguous()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    delta = torch.empty_like(lse)
    flags = dict(D=D, HAS_ALIBI=slopes is not None, SIGMOID=sigmoid)
    slopes = lse if slopes is None else slopes  # any pointer: not read without ALiBi
    cfg = _config("dq", q.dtype)  # runs first: it also writes delta for the dK/dV pass
    _attn_bwd_dq[(triton.cdiv(Tq, cfg["BM"]), B * H)](
        q, k, v, o, do, dq, lse, delta, slopes, *_strides(q, k, v, o, do, dq), H, H // Hkv, Tq, Tk, W, scale * _LOG2E,
        scale, **flags, **cfg)
    cfg = _config("dkdv", q.dtype)
    _attn_bwd_dkdv[(triton.cdiv(Tk, cfg["BN"]), B * Hkv)](  # per kv head: it sums its group
        q, k, v, do, dk, dv, lse, delta, slopes, *_strides(q, k, v, do, dk, dv), H, H // Hkv, Tq, Tk, W, scale * _LOG2E,
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


# -----------------------------------------------------------------------------
# public entry


def triton_applies(q, k, window, kind, alibi_slopes):
    """Whether attention(..., backend="auto") takes this kernel for these inputs."""
    if not q.is_cuda or q.shape[-1] not in HEAD_DIMS or q.dtype == torch.float64:
        return False
    # Plain global softmax over all keys (or one query) is SDPA's flash kernel in the torch path,
    # measured faster than this kernel on the H100 (notes/kernel.md). Everything else is ours.
    plain_global = window is None and kind == "softmax" and alibi_slopes is None
    return not (plain_global and q.shape[2] in (1, k.shape[2]))


def window_attention_triton(q, k, v, window, kind, alibi_slopes, scale):
    """attention.py's attention() on the GPU, differentiable in q, k and v.

    q (B, H, Tq, D), k and v (B, Hkv, Tk, D) with Tq <= Tk and H a multiple of Hkv (query head h
    reads kv head h // (H / Hkv)), D in HEAD_DIMS, bf16, fp16 or fp32; window None (global causal)
    or W >= 1; kind "softmax" or "sigmoid"; alibi_slopes None or (H,), one per query head,
    constants (no gradient flows to them); scale the factor on q.k. Returns (B, H, Tq, D)."""
    if q.shape[-1] not in HEAD_DIMS:
        raise ValueError(f"the Triton kernel takes head dims {', '.join(map(str, HEAD_DIMS))}, got {q.shape[-1]}")
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    if alibi_slopes is not None:  # in base 2, like the scale: the kernels use exp2
        alibi_slopes = (alibi_slopes.detach().to(device=q.device, dtype=torch.float32) * _LOG2E).contiguous()
    args = (q, k, v, alibi_slopes, _GLOBAL if window is None else window, kind == "sigmoid", scale)
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if needs_grad or torch.compiler.is_compiling():
        return _fwd_op(*args)[0]
    return _fwd(*args)[0]  # inference outside torch.compile: the same launch without the op's dispatch
