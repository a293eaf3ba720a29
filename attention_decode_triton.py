"""
The decoding step of attention.py (attention_decode) as Triton kernels for the GPU, with split-K
("flash decoding"). The contract (which cache slots a query sees, the logits, softmax vs sigmoid)
is attention.py's docstring; its PyTorch path is the reference these kernels equal.

One query per (batch, head) against S cache slots is a matrix-vector product: it reads the whole
cache once and does a few flops per byte, so it is bound by memory bandwidth, and the only way to
keep every SM busy at small batch is to split the S slots. The grid is (B * H, n_splits): each
program takes one query head and one contiguous chunk of the slots, walks it in tiles of BLOCK_S
slots keeping an online softmax (running max, sum, weighted value sum) in float32, and writes those
partials to a small float32 workspace; the n_splits partials of each (batch, head) are then merged
into the output, in q's dtype. On a window's ring the last of a head's programs to finish (an
atomic count per head says which) merges them, so the step is one launch; on a long global cache a
second small kernel does. Timed alone inside CUDA graphs on an H100 (notes/kernel.md), each was the
faster there: a ring of 512 slots 10.55 us a launch against 10.9 with the second kernel, a cache of
33k slots 272.9 us against 275.5 with the merge in the last split (whose reading of every split's
partials comes after the longest split). With one split (a cache of <= 64 slots) there is nothing
to merge and no workspace.

Short caches are split too, into chunks of 64 slots: a program's tiles are loaded one after
another (a tile's key positions, then its keys and values), so a program that walks a whole
window ring of 512 slots waits on ~16 memory round trips in a row, while 8 programs of 64 slots
wait on 2 each, side by side. Measured on an H100 inside a CUDA graph (`python bench_attention.py
--decode`: B=8, H=12, D=64, one warp, the merge included, then a second kernel): a ring of 512
slots 13.4 -> 5.6 us against one split per 512 slots, a global cache of 1,280 slots 14.1 -> 8.3 us,
and 33k slots read at 2.98 TB/s (the GPU's copy rate) either way. One warp per program (64 slots x
64 dims): four warps read the 33k cache at 2.85 TB/s in a throwaway sweep (notes/kernel.md).

The step stays capturable in a CUDA graph: the query's position is read from device memory inside
the kernel (never .item()), and every size (grid, workspace, splits) is a function of the shapes
alone, so each replay runs the same launches on the same memory whatever the position.

Logits live in base 2 (log2(e) folded into the scale on the host and into the slope in the
kernel) so the kernels call exp2, as attention_triton.py's do. One query needs no matrix unit:
q . k is an elementwise product summed over D, so any head dim works (padded to a power of two).

A second entry, attention_decode_step_triton, starts from the step's projection instead: the same
kernel (its STEP path) also rotates the new query and key by RoPE, writes the new key and value
into the cache and works out each slot's position from the query's, the few small operations
model.Attention runs before the attention. The model uses it for window layers' rings, where it
measured faster than those operations as separate kernels; over a long global cache it was not
(notes/kernel.md), so global layers keep the first entry.

Layout: imports and constants, the kernels, the host launcher, the custom-op wiring, and last the
public entries, attention_decode_triton and attention_decode_step_triton.
"""

import os
from typing import Optional

import torch
import triton
import triton.language as tl

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_LOG2E = 1.4426950408889634
SPLIT_SLOTS = 64  # a split covers at most this many slots (until MAX_SPLITS): short caches split too (above)
MAX_SPLITS = 64  # the merge holds all of a head's partials in registers: 64 x D floats at most
EMPTY_MAX = -1.0e30  # the running max before any seen slot: finite, so exp2(EMPTY_MAX - m) is 0, never NaN


# -----------------------------------------------------------------------------
# kernels
#
# Strides are named s<tensor><axis>: b batch, h head, s slot; the last axis (D) is contiguous.

@triton.jit
def _rotated(X, x, offs_d, d_ok, cos, sin, D: tl.constexpr):
    # model.apply_rope on one head's vector x (loaded from X): pairs (d, d + D/2) rotated by the
    # angle of frequency d mod D/2, rot[d] = x[d] cos - x[d + D/2] sin below D/2, x[d] cos + x[d - D/2] sin above
    low = offs_d < D // 2
    partner = tl.load(X + tl.where(low, offs_d + D // 2, offs_d - D // 2), mask=d_ok, other=0.0).to(tl.float32)
    return x * cos + tl.where(low, -partner, partner) * sin


@triton.jit
def _decode_partial(Q, K, V, KEY_POS, QUERY_POS, SLOPES, O, M_WS, L_WS, ACC_WS, ARRIVALS, K_NEW, V_NEW, COS, SIN,
                    sqb, sqh, skb, skh, sks, svb, svh, svs, sob, soh, sknb, sknh, svnb, svnh, scos,
                    H, G, S, split_len, qk_scale,
                    LOG2E: tl.constexpr, EMPTY: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
                    HAS_ALIBI: tl.constexpr, SIGMOID: tl.constexpr, SPLIT: tl.constexpr, BLOCK_SPLITS: tl.constexpr,
                    MERGE: tl.constexpr,
                    STEP: tl.constexpr, RING: tl.constexpr, ROPE: tl.constexpr):
    bh, split, n_splits = tl.program_id(0), tl.program_id(1), tl.num_programs(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)  # int64: b * skb can pass 2^31 in a long cache
    offs_d = tl.arange(0, BLOCK_D)
    # BLOCK_D is D rounded up to a power of two (tl.arange needs one). D is a constexpr so that
    # a power-of-two head dim loads with no mask along D: a mask constant along the row keeps the
    # loads of a row vectorised (16 bytes at a time), a mask per element would not.
    d_ok = offs_d < D
    Q += b * sqb + h * sqh
    q = tl.load(Q + offs_d, mask=d_ok, other=0.0).to(tl.float32)  # (BLOCK_D,), loaded once
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
    slot = -1  # STEP: the slot this step's key and value go to
    if STEP:  # what model.Attention does around the attention of a decoding step, done here
        K_NEW += b * sknb + (h // G) * sknh
        k_new = tl.load(K_NEW + offs_d, mask=d_ok, other=0.0).to(tl.float32)
        v_new = tl.load(V_NEW + b * svnb + (h // G) * svnh + offs_d, mask=d_ok, other=0.0)
        if ROPE:
            freq = tl.where(offs_d < D // 2, offs_d, offs_d - D // 2)
            cos = tl.load(COS + query_pos * scos + freq, mask=d_ok, other=0.0)
            sin = tl.load(SIN + query_pos * scos + freq, mask=d_ok, other=0.0)
            q = _rotated(Q, q, offs_d, d_ok, cos, sin, D)
            k_new = _rotated(K_NEW, k_new, offs_d, d_ok, cos, sin, D)
        # rounded to the dtypes the plain path holds them in: the same numbers this step and the next
        q = q.to(Q.dtype.element_ty).to(tl.float32)
        k_new = k_new.to(K.dtype.element_ty)
        slot = query_pos % S if RING else query_pos
        # one writer per slot: the split that holds it, in the first query head of the kv head's group
        writer = (h % G == 0) & (slot >= lo) & (slot < hi)
        write = tl.where(writer, d_ok, False)  # (d_ok & writer: a mask dtype Triton's interpreter refuses)
        tl.store(K + slot * sks + offs_d, k_new, mask=write)
        tl.store(V + slot * svs + offs_d, v_new.to(V.dtype.element_ty), mask=write)
        k_new, v_new = k_new.to(tl.float32), v_new.to(V.dtype.element_ty).to(tl.float32)
    m_i = EMPTY  # running max of the base-2 logits (softmax)
    l_i = 0.0  # running sum of exp2(logit - m_i) (softmax)
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)  # running weighted sum of the values
    for s0 in range(lo, hi, BLOCK_S):
        offs_s = s0 + tl.arange(0, BLOCK_S)
        if STEP:  # each slot's position from this step's alone, after its write (model.KVCache.key_positions)
            key_pos = query_pos - (query_pos + S - offs_s) % S if RING else offs_s
            key_pos = tl.where(offs_s < hi, key_pos, -1)
        else:
            key_pos = tl.load(KEY_POS + offs_s, mask=offs_s < hi, other=-1)  # (BLOCK_S,); -1: empty
        # The slot being written is left out here (its old contents may still be in memory) and
        # its new key and value, in registers, are added after the loop (STEP).
        seen = (key_pos >= 0) & (key_pos <= query_pos) & (offs_s != slot)
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
    if STEP:  # the new key and value, once, by the split that holds their slot (distance 0: no ALiBi term)
        holds = (slot >= lo) & (slot < hi)
        s = tl.sum(k_new * q, 0) * qk_scale
        if SIGMOID:
            p = tl.where(holds, 1.0 / (1.0 + tl.exp2(-s)), 0.0)
        else:
            m_new = tl.where(holds, tl.maximum(m_i, s), m_i)
            p = tl.where(holds, tl.exp2(s - m_new), 0.0)
            alpha = tl.exp2(m_i - m_new)
            l_i = l_i * alpha + p
            acc = acc * alpha
            m_i = m_new
        acc += p * v_new
    if SPLIT:  # partials for the merge; a split that saw nothing leaves (EMPTY, 0, 0), which weighs 0
        ws = bh * n_splits + split
        if not SIGMOID:  # the sigmoid's partials are its sums alone
            tl.store(M_WS + ws, m_i)
            tl.store(L_WS + ws, l_i)
        tl.store(ACC_WS + ws * D + offs_d, acc, mask=d_ok)
        if MERGE:  # the last of a head's splits to finish merges them all: no second kernel
            # The barrier orders every thread's stores before the count, whose atomic add (acq_rel,
            # GPU scope, the default) publishes them to the program that reads them.
            tl.debug_barrier()
            arrived = tl.atomic_add(ARRIVALS + bh, 1)  # how many of this head's splits finished before
            if arrived == n_splits - 1:
                _merge_splits(M_WS, L_WS, ACC_WS, O + b * sob + h * soh, bh, n_splits, D, BLOCK_SPLITS, BLOCK_D,
                              SIGMOID)
                tl.store(ARRIVALS + bh, 0)  # zero again for the next launch
    else:
        out = acc if SIGMOID else acc / l_i
        tl.store(O + b * sob + h * soh + offs_d, out.to(O.dtype.element_ty), mask=d_ok)


@triton.jit
def _decode_combine(M_WS, L_WS, ACC_WS, O, sob, soh, H, n_splits, D: tl.constexpr,
                    BLOCK_SPLITS: tl.constexpr, BLOCK_D: tl.constexpr, SIGMOID: tl.constexpr):
    # One program per (batch, head), after _decode_partial: its merge as a kernel of its own
    bh = tl.program_id(0)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    _merge_splits(M_WS, L_WS, ACC_WS, O + b * sob + h * soh, bh, n_splits, D, BLOCK_SPLITS, BLOCK_D, SIGMOID)


@triton.jit
def _merge_splits(M_WS, L_WS, ACC_WS, O, bh, n_splits, D: tl.constexpr, BLOCK_SPLITS: tl.constexpr,
                  BLOCK_D: tl.constexpr, SIGMOID: tl.constexpr):
    # One (batch, head)'s output from its n_splits partials: the softmax of the union of the
    # splits. Split i's sums are relative to its own max m_i; scaled by exp2(m_i - M), M the max
    # of all, they share one base. Loaded through L2 (".cg"): other SMs wrote them.
    offs_p = tl.arange(0, BLOCK_SPLITS)
    offs_d = tl.arange(0, BLOCK_D)
    p_ok, d_ok = offs_p < n_splits, offs_d < D
    ws = bh * n_splits + offs_p  # (BLOCK_SPLITS,)
    acc = tl.load(ACC_WS + ws[:, None] * D + offs_d[None, :], mask=p_ok[:, None] & d_ok[None, :], other=0.0,
                  cache_modifier=".cg")
    if SIGMOID:  # no normalisation: the splits' weighted sums just add
        out = tl.sum(acc, 0)
    else:
        m = tl.load(M_WS + ws, mask=p_ok, other=float("-inf"), cache_modifier=".cg")  # padding weighs exp2(-inf) = 0
        l_sum = tl.load(L_WS + ws, mask=p_ok, other=0.0, cache_modifier=".cg")
        w = tl.exp2(m - tl.max(m, 0))  # (BLOCK_SPLITS,)
        out = tl.sum(acc * w[:, None], 0) / tl.sum(l_sum * w, 0)
    tl.store(O + offs_d, out.to(O.dtype.element_ty), mask=d_ok)


# -----------------------------------------------------------------------------
# host launcher and the custom-op wiring

def _config(block_d=64, step=False):
    if _INTERPRET:  # small tiles, so that the CPU tests cross many tile and split edges quickly
        return dict(BLOCK_S=16, num_warps=1)
    # One warp per 64 dims of the head: measured on an H100 at D=64 only (above). Tiles of 64
    # slots x 64 dims in float32 already fill a warp's registers for k and v, so wider heads get
    # more warps (not measured), and a float32 cache spills some (slower, not wrong). The step's
    # kernel holds more (the new key and value, RoPE's tables): on a ring of 512 slots tiles of 32
    # slots and two warps measured 10.9 us against 15.5 us with the plain kernel's (notes/kernel.md).
    if step:
        return dict(BLOCK_S=32, num_warps=2 * max(1, block_d // 64))
    return dict(BLOCK_S=64, num_warps=max(1, block_d // 64))


def decode_splits(S, split_slots=SPLIT_SLOTS, block_s=None):
    """(n_splits, split_len) for S cache slots, from the shapes alone (a CUDA graph replays the
    same grid at every position): about S / split_slots splits, at most MAX_SPLITS, each a
    multiple of block_s slots, the last one possibly shorter, none empty."""
    block_s = block_s or _config()["BLOCK_S"]
    n = min(MAX_SPLITS, triton.cdiv(S, split_slots))
    split_len = triton.cdiv(triton.cdiv(S, n), block_s) * block_s
    return triton.cdiv(S, split_len), split_len


_ARRIVALS = {}  # (device, n) -> n int32 counters, zero between launches


def arrival_counts(device, n):
    """The counters by which the last of a (batch, head)'s splits (here) or of a tile's shares of K
    (linear_decode_triton.py) finds out it is the last: zero before a launch, and zero again after
    it (that program resets its own). One buffer per device and size, made once and kept, so that
    a CUDA graph captured with it can replay it; launches that share it must not overlap, as
    launches on one stream do not. The custom ops that use it declare no mutation of it: each
    launch leaves it as it found it. Made outside any CUDA graph capture (a zero-fill captured
    would not run before the first replay): run a step once before capturing it, as GPT.decoder
    does."""
    key = (device, n)
    if key not in _ARRIVALS:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("the decoding kernels' counters are made on a first call outside CUDA graph capture: "
                               "run the step once before capturing it")
        _ARRIVALS[key] = torch.zeros(n, dtype=torch.int32, device=device)
    return _ARRIVALS[key]


def _launch(q, k, v, key_pos, query_pos, slopes, sigmoid, scale, split_slots, step=None):
    """Both ops' launches: the partials and, where there are several splits, their merge (by the
    last split on a ring, or by a second kernel). step (attention_decode_step's): (k_new, v_new,
    cos, sin, ring), q, k_new and v_new (B, H or Hkv, D) views of the step's projection, cos and
    sin None for no RoPE."""
    B, H, D = q.shape[0], q.shape[1], k.shape[3]
    block_d = triton.next_power_of_2(D)
    k_new, v_new, cos, sin, ring = step or (q, q, None, None, False)
    S, cfg = k.shape[2], _config(block_d, step=step is not None)
    n_splits, split_len = decode_splits(S, split_slots, cfg["BLOCK_S"])
    # The merge in the last split on a ring (10.55 against 10.89 us a launch with a second kernel),
    # in a second kernel on a 32k cache (272.9 against 275.5 us): timed alone in CUDA graphs on an
    # H100 (notes/kernel.md)
    merge = ring and n_splits > 1
    o = q.new_empty(B, H, 1, D)
    m_ws = l_ws = acc_ws = arrivals = o  # placeholders: not read or written with one split
    if n_splits > 1:  # float32 partials, a few bytes per split against the cache's bytes read
        m_ws, l_ws = (q.new_empty(B * H, n_splits, dtype=torch.float32) for _ in range(2))
        acc_ws = q.new_empty(B * H, n_splits, D, dtype=torch.float32)
        arrivals = arrival_counts(q.device, B * H) if merge else o
    _decode_partial[(B * H, n_splits)](
        q, k, v, q if key_pos is None else key_pos, query_pos, q if slopes is None else slopes, o, m_ws, l_ws, acc_ws,
        arrivals, k_new, v_new, q if cos is None else cos, q if sin is None else sin,
        q.stride(0), q.stride(1), *k.stride()[:3], *v.stride()[:3], o.stride(0), o.stride(1),
        k_new.stride(0), k_new.stride(1), v_new.stride(0), v_new.stride(1), 0 if cos is None else cos.stride(0),
        H, H // k.shape[1], S, split_len, scale * _LOG2E,
        LOG2E=_LOG2E, EMPTY=EMPTY_MAX, D=D, BLOCK_D=block_d, HAS_ALIBI=slopes is not None, SIGMOID=sigmoid,
        SPLIT=n_splits > 1, BLOCK_SPLITS=triton.next_power_of_2(n_splits), STEP=step is not None, RING=ring,
        ROPE=cos is not None, MERGE=merge, **cfg)
    if n_splits > 1 and not merge:
        # A second Triton kernel rather than torch ops: the merge in torch is ~7 small kernels
        # (max, sub, exp2, two weighted sums, divide, cast), each a launch and a node of the
        # CUDA graph, while a decoding step at small batch is dominated by such launches.
        _decode_combine[(B * H,)](m_ws, l_ws, acc_ws, o, o.stride(0), o.stride(1), H, n_splits, D=D,
                                  BLOCK_SPLITS=triton.next_power_of_2(n_splits), BLOCK_D=block_d,
                                  SIGMOID=sigmoid, num_warps=cfg["num_warps"])
    return o


# Custom ops, as attention_triton.py's kernels are: torch.compile then keeps each as one opaque
# node of its graph instead of tracing into the launcher.
@torch.library.custom_op("swan::attention_decode", mutates_args=())
def _decode_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_pos: torch.Tensor, query_pos: torch.Tensor,
               slopes: Optional[torch.Tensor], sigmoid: bool, scale: float, split_slots: int) -> torch.Tensor:
    return _launch(q, k, v, key_pos, query_pos, slopes, sigmoid, scale, split_slots)


@_decode_op.register_fake
def _(q, k, v, key_pos, query_pos, slopes, sigmoid, scale, split_slots):
    return q.new_empty(q.shape[0], q.shape[1], 1, q.shape[3])


# The step's op writes the new key and value into the cache: it declares the cache's two tensors
# mutated, so that torch.compile orders it after earlier readers and does not copy them.
@torch.library.custom_op("swan::attention_decode_step", mutates_args=("k_cache", "v_cache"))
def _decode_step_op(q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, query_pos: torch.Tensor, cos: Optional[torch.Tensor],
                    sin: Optional[torch.Tensor], ring: bool, slopes: Optional[torch.Tensor], sigmoid: bool,
                    scale: float, split_slots: int) -> torch.Tensor:
    return _launch(q, k_cache, v_cache, None, query_pos, slopes, sigmoid, scale, split_slots,
                   step=(k_new, v_new, cos, sin, ring))


@_decode_step_op.register_fake
def _(q, k_new, v_new, k_cache, v_cache, query_pos, cos, sin, ring, slopes, sigmoid, scale, split_slots):
    return q.new_empty(q.shape[0], q.shape[1], 1, k_cache.shape[3])


# -----------------------------------------------------------------------------
# public entry


def _check_entry(kind, t):  # what both entries refuse, in one line each
    if kind not in ("softmax", "sigmoid"):
        raise ValueError(f"kind must be 'softmax' or 'sigmoid', got {kind!r}")
    if not (t.is_cuda or _INTERPRET):
        raise ValueError("the Triton decoding kernel needs CUDA tensors (or TRITON_INTERPRET=1 on the CPU)")


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
    _check_entry(kind, q)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))  # no-ops for the model's tensors
    return _decode_op(q, k, v, key_pos.contiguous(), query_pos, alibi_slopes, kind == "sigmoid", float(scale),
                      split_slots)


def attention_decode_step_triton(qkv, n_head, k_cache, v_cache, query_pos, rope=None, ring=False, kind="softmax",
                                 alibi_slopes=None, scale=None, split_slots=SPLIT_SLOTS):
    """A decoding step's attention from its projection, in one kernel on a ring (on a global cache
    of several splits, plus the merge's): what model.Attention does around attention_decode,
    folded in. The query and the new key are rotated by RoPE at query_pos (rope given); the new
    key and value are written to their slot, query_pos in a global cache, query_pos % S in a ring
    (ring=True), and every slot's position is worked out from query_pos
    (model.KVCache.key_positions) rather than read.

    qkv (B, 1, (n_head + 2 Hkv) D): the step's projection, query heads, then key heads, then value
    heads; k_cache, v_cache (B, Hkv, S, D), written in place; query_pos a (1,) integer tensor on
    the device; rope None or model.rope_tables' (cos, sin), (n_pos, D / 2) float32 with
    n_pos > query_pos; kind, alibi_slopes and scale as in attention_decode_triton. Returns
    (B, n_head, 1, D) in qkv's dtype."""
    _check_entry(kind, qkv)
    B, Hkv, D = qkv.shape[0], k_cache.shape[1], k_cache.shape[3]
    if qkv.shape[-1] != (n_head + 2 * Hkv) * D:
        raise ValueError(f"qkv's last dim {qkv.shape[-1]} is not (n_head + 2 * {Hkv} kv heads) x head dim {D}")
    if k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:  # written in place: no contiguous copy can stand in
        raise ValueError("the KV cache's last dim must be contiguous (stride 1) to be written by the step kernel")
    q, k_new, v_new = qkv.reshape(B, n_head + 2 * Hkv, D).split([n_head, Hkv, Hkv], dim=1)  # (B, heads, D) views
    cos, sin = rope if rope is not None else (None, None)
    scale = D ** -0.5 if scale is None else scale
    return _decode_step_op(q, k_new, v_new, k_cache, v_cache, query_pos, cos, sin, ring, alibi_slopes,
                           kind == "sigmoid", float(scale), split_slots)
