"""
The decoding step of attention.py (attention_decode) as Triton kernels for the GPU, with split-K
("flash decoding"). The contract (which cache slots a query sees, the logits, softmax vs sigmoid)
is attention.py's docstring; its PyTorch path is the reference these kernels equal.

One query per (batch, head) against S cache slots is a matrix-vector product: it reads the whole
cache once and does a few flops per byte, so it is bound by memory bandwidth, and the only way to
keep every SM busy at small batch is to split the S slots. The grid is (B * H, n_splits): each
program takes one query head and one contiguous chunk of the slots, walks it in tiles of BLOCK_S
slots keeping an online softmax (running max, sum, weighted value sum) in float32, and writes those
partials to a small float32 workspace. A second small kernel merges the n_splits partials of each
(batch, head) into the output, in q's dtype. With one split (a cache of <= 64 slots), the first
kernel finishes the softmax itself: one launch, no workspace.

Short caches are split too, into chunks of 64 slots: a program's tiles are loaded one after
another (a tile's key positions, then its keys and values), so a program that walks a whole
window ring of 512 slots waits on ~16 memory round trips in a row, while 8 programs of 64 slots
wait on 2 each, side by side. Measured on an H100 inside a CUDA graph (`python bench_attention.py
--decode`: B=8, H=12, D=64, one warp, the combine included): a ring of 512 slots 13.4 -> 5.6 us
against one split per 512 slots, a global cache of 1,280 slots 14.1 -> 8.3 us, and 33k slots read
at 2.98 TB/s (the GPU's copy rate) either way. One warp per program (64 slots x 64 dims): four
warps read the 33k cache at 2.85 TB/s in a throwaway sweep (notes/kernel.md).

The step stays capturable in a CUDA graph: the query's position is read from device memory inside
the kernel (never .item()), and every size (grid, workspace, splits) is a function of the shapes
alone, so each replay runs the same launches on the same memory whatever the position.

Logits live in base 2 (log2(e) folded into the scale on the host and into the slope in the
kernel) so the kernels call exp2, as attention_triton.py's do. One query needs no matrix unit:
q . k is an elementwise product summed over D, so any head dim works (padded to a power of two).

Layout: imports and constants, the kernels, the host launcher, the custom-op wiring, and last the
public entry, attention_decode_triton.
"""

import os
from typing import Optional

import torch
import triton
import triton.language as tl

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_LOG2E = 1.4426950408889634
SPLIT_SLOTS = 64  # a split covers at most this many slots (until MAX_SPLITS): short caches split too (above)
MAX_SPLITS = 64  # the combine holds all of a head's partials in registers: 64 x D floats at most
EMPTY_MAX = -1.0e30  # the running max before any seen slot: finite, so exp2(EMPTY_MAX - m) is 0, never NaN


# -----------------------------------------------------------------------------
# kernels
#
# Strides are named s<tensor><axis>: b batch, h head, s slot; the last axis (D) is contiguous.

@triton.jit
def _decode_partial(Q, K, V, KEY_POS, QUERY_POS, SLOPES, O, M_WS, L_WS, ACC_WS,
                    sqb, sqh, skb, skh, sks, svb, svh, svs, sob, soh, H, G, S, split_len, qk_scale,
                    LOG2E: tl.constexpr, EMPTY: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
                    HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr, SPLIT: tl.constexpr):
    bh, split = tl.program_id(0), tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)  # int64: b * skb can pass 2^31 in a long cache
    offs_d = tl.arange(0, BLOCK_D)
    # BLOCK_D is D rounded up to a power of two (tl.arange needs one). D is a constexpr so that
    # a power-of-two head dim loads with no mask along D: a mask constant along the row keeps the
    # loads of a row vectorised (16 bytes at a time), a mask per element would not.
    d_ok = offs_d < D
    q = tl.load(Q + b * sqb + h * sqh + offs_d, mask=d_ok, other=0.0).to(tl.float32)  # (BLOCK_D,), loaded once
    K += b * skb + (h // G) * skh  # the kv head of query head h (grouped-query attention)
    V += b * svb + (h // G) * svh
    # The position is read here, on the device, at every launch: a replayed CUDA graph sees the
    # step's own position although the graph was captured at another one.
    query_pos = tl.load(QUERY_POS)
    slope = tl.load(SLOPES + h).to(tl.float32) * LOG2E if HAS_ALIBI else 0.0  # to base 2, no host op
    # This split's slots [lo, hi). split_len is a multiple of BLOCK_S, so tiles never straddle
    # two splits; only the last split's last tile runs past S.
    lo = split * split_len
    hi = tl.minimum(lo + split_len, S)
    m_i = EMPTY  # running max of the base-2 logits (softmax)
    l_i = 0.0  # running sum of exp2(logit - m_i) (softmax)
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)  # running weighted sum of the values
    for s0 in range(lo, hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        key_pos = tl.load(KEY_POS + offs_s, mask=offs_s < hi, other=-1)  # (BLOCK_S,); -1: empty
        seen = (key_pos >= 0) & (key_pos <= query_pos)
        # Masked by `seen`, not just by bounds: the loads of unseen slots (a global cache's
        # unwritten tail, a ring not yet full) are predicated off and cost no memory traffic.
        kv_mask = seen[:, None] if BLOCK_D == D else seen[:, None] & d_ok[None, :]
        k = tl.load(K + offs_s[:, None] * sks + offs_d[None, :], mask=kv_mask, other=0.0).to(tl.float32)
        v = tl.load(V + offs_s[:, None] * svs + offs_d[None, :], mask=kv_mask, other=0.0).to(tl.float32)
        s = tl.sum(k * q[None, :], 1) * qk_scale  # (BLOCK_S,) base-2 logits
        if HAS_ALIBI:  # distances as float32: exact below 2^24 positions
            s += slope * (query_pos - key_pos).to(tl.float32)
        if SIGMOID:  # sigmoid(l) = 1 / (1 + exp2(-s)); unseen slots weigh exactly 0
            p = tl.where(seen, 1.0 / (1.0 + tl.exp2(-s)), 0.0)
        else:  # online softmax: rescale what was summed so far to the new max
            s = tl.where(seen, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 0))  # stays EMPTY (finite) while nothing was seen
            p = tl.exp2(s - m_new)  # unseen: exp2(-inf) = 0
            alpha = tl.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 0)
            acc = acc * alpha
            m_i = m_new
        acc += tl.sum(p[:, None] * v, 0)
    if SPLIT:  # partials for the combine; a split that saw nothing leaves (EMPTY, 0, 0), which weighs 0
        ws = bh * tl.num_programs(1) + split
        if not SIGMOID:  # the sigmoid's partials are its sums alone
            tl.store(M_WS + ws, m_i)
            tl.store(L_WS + ws, l_i)
        tl.store(ACC_WS + ws * D + offs_d, acc, mask=d_ok)
    else:
        out = acc if SIGMOID else acc / l_i
        tl.store(O + b * sob + h * soh + offs_d, out.to(O.dtype.element_ty), mask=d_ok)


@triton.jit
def _decode_combine(M_WS, L_WS, ACC_WS, O, sob, soh, H, n_splits, D: tl.constexpr,
                    BLOCK_SPLITS: tl.constexpr, BLOCK_D: tl.constexpr, SIGMOID: tl.constexpr):
    # One program per (batch, head): the softmax of the union of the splits. Split i's sums are
    # relative to its own max m_i; scaled by exp2(m_i - M), M the max of all, they share one base.
    bh = tl.program_id(0)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    offs_p = tl.arange(0, BLOCK_SPLITS)
    offs_d = tl.arange(0, BLOCK_D)
    p_ok, d_ok = offs_p < n_splits, offs_d < D
    ws = bh * n_splits + offs_p  # (BLOCK_SPLITS,)
    acc = tl.load(ACC_WS + ws[:, None] * D + offs_d[None, :], mask=p_ok[:, None] & d_ok[None, :], other=0.0)
    if SIGMOID:  # no normalisation: the splits' weighted sums just add
        out = tl.sum(acc, 0)
    else:
        m = tl.load(M_WS + ws, mask=p_ok, other=float("-inf"))  # padding lanes weigh exp2(-inf) = 0
        l_sum = tl.load(L_WS + ws, mask=p_ok, other=0.0)
        w = tl.exp2(m - tl.max(m, 0))  # (BLOCK_SPLITS,)
        out = tl.sum(acc * w[:, None], 0) / tl.sum(l_sum * w, 0)
    tl.store(O + b * sob + h * soh + offs_d, out.to(O.dtype.element_ty), mask=d_ok)


# -----------------------------------------------------------------------------
# host launcher and the custom-op wiring

def _config(block_d=64):
    if _INTERPRET:  # small tiles, so that the CPU tests cross many tile and split edges quickly
        return dict(BLOCK_S=16, num_warps=1)
    # One warp per 64 dims of the head: measured on an H100 at D=64 only (above). Tiles of 64
    # slots x 64 dims in float32 already fill a warp's registers for k and v, so wider heads get
    # more warps (not measured), and a float32 cache spills some (slower, not wrong).
    return dict(BLOCK_S=64, num_warps=max(1, block_d // 64))


def decode_splits(S, split_slots=SPLIT_SLOTS, block_s=None):
    """(n_splits, split_len) for S cache slots, from the shapes alone (a CUDA graph replays the
    same grid at every position): about S / split_slots splits, at most MAX_SPLITS, each a
    multiple of block_s slots, the last one possibly shorter, none empty."""
    block_s = block_s or _config()["BLOCK_S"]
    n = min(MAX_SPLITS, triton.cdiv(S, split_slots))
    split_len = triton.cdiv(triton.cdiv(S, n), block_s) * block_s
    return triton.cdiv(S, split_len), split_len


@torch.library.custom_op("swan::attention_decode", mutates_args=())
def _decode_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_pos: torch.Tensor, query_pos: torch.Tensor,
               slopes: Optional[torch.Tensor], sigmoid: bool, scale: float, split_slots: int) -> torch.Tensor:
    B, H, _, D = q.shape
    block_d = triton.next_power_of_2(D)
    S, cfg = k.shape[2], _config(block_d)
    n_splits, split_len = decode_splits(S, split_slots, cfg["BLOCK_S"])
    o = q.new_empty(B, H, 1, D)
    m_ws = l_ws = acc_ws = o  # placeholders: not read or written with one split
    if n_splits > 1:  # float32 partials, a few bytes per split against the cache's bytes read
        m_ws, l_ws = (q.new_empty(B * H, n_splits, dtype=torch.float32) for _ in range(2))
        acc_ws = q.new_empty(B * H, n_splits, D, dtype=torch.float32)
    _decode_partial[(B * H, n_splits)](
        q, k, v, key_pos, query_pos, key_pos if slopes is None else slopes, o, m_ws, l_ws, acc_ws,
        q.stride(0), q.stride(1), *k.stride()[:3], *v.stride()[:3], o.stride(0), o.stride(1),
        H, H // k.shape[1], S, split_len, scale * _LOG2E, LOG2E=_LOG2E, EMPTY=EMPTY_MAX, D=D, BLOCK_D=block_d,
        HAS_ALIBI=slopes is not None, SIGMOID=sigmoid, SPLIT=n_splits > 1, **cfg)
    if n_splits > 1:
        # A second Triton kernel rather than torch ops: the merge in torch is ~7 small kernels
        # (max, sub, exp2, two weighted sums, divide, cast), each a launch and a node of the
        # CUDA graph, while a decoding step at small batch is dominated by such launches.
        _decode_combine[(B * H,)](m_ws, l_ws, acc_ws, o, o.stride(0), o.stride(1), H, n_splits, D=D,
                                  BLOCK_SPLITS=triton.next_power_of_2(n_splits), BLOCK_D=block_d,
                                  SIGMOID=sigmoid, num_warps=cfg["num_warps"])
    return o


# A custom op, as attention_triton.py's kernels are: torch.compile then keeps the step as one
# opaque node of its graph instead of tracing into the launcher.
@_decode_op.register_fake
def _(q, k, v, key_pos, query_pos, slopes, sigmoid, scale, split_slots):
    return q.new_empty(q.shape[0], q.shape[1], 1, q.shape[3])


# -----------------------------------------------------------------------------
# public entry


def attention_decode_triton(q, k, v, key_pos, query_pos, kind="softmax", alibi_slopes=None, scale=None,
                            split_slots=SPLIT_SLOTS):
    """attention.py's attention_decode on the GPU (or in Triton's interpreter): one decoding step.

    q (B, H, 1, D) at the position held in query_pos, a (1,) integer tensor on q's device; k, v
    (B, Hkv, S, D) cache slots, H a multiple of Hkv (query head h reads kv head h // (H / Hkv));
    key_pos (S,) integers, the position each slot holds (negative: empty). A slot is seen when
    0 <= key_pos <= query_pos. Any head dim D; bf16, fp16 or fp32, computed in float32. kind
    "softmax" or "sigmoid"; alibi_slopes None or (H,); scale the factor on q.k (None: D^-0.5).
    split_slots: slots per split before the S slots are split (decode_splits), for tests and
    tuning. Returns (B, H, 1, D) in q's dtype."""
    if kind not in ("softmax", "sigmoid"):
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if not (q.is_cuda or _INTERPRET):
        raise ValueError("the Triton decoding kernel needs CUDA tensors (or TRITON_INTERPRET=1 on the CPU)")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))  # no-ops for the model's tensors
    return _decode_op(q, k, v, key_pos.contiguous(), query_pos, alibi_slopes, kind == "sigmoid", float(scale),
                      split_slots)
