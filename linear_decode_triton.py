"""
The matrix products of a decoding step as Triton kernels, each with its neighbours folded in: the
GELU or SwiGLU, or the residual add, after it, and the RMSNorm between two products split across
them. model.Block.decode uses them when the decoding backend is "triton" (GPT.set_decode_backend);
the reference they equal is the model's own path, nn.RMSNorm, nn.Linear, then F.gelu or F.silu,
or an add.

Why. At decoding time a product is x (M, K) @ W^T with M the batch, a few rows, and W (N, K) a
layer's weight: it reads W once and does 2 M flops per weight read, so it is bound by memory, and
at the sizes of a small model by latency. Measured on an H100 inside a CUDA graph (notes/kernel.md,
a 12 x 768 model at batch 8): its four products took 3.6-7.0 us each in cuBLAS, and each small
kernel around one (the norm, the GELU, the residual add, cuBLAS's split-K reduce) 1-2 us more, most
of every one a fixed cost of being a kernel rather than bytes moved.

How. One program owns BLOCK_N output columns and BLOCK_M rows and walks K in tiles of BLOCK_K:
narrow column blocks make many programs, so that the weight's bytes are read by most SMs at once (a
product of 768 columns is 48 programs). A long K is cut into shares (split-K), one program each,
which write their float32 sums to a workspace; the last of a tile's shares to finish (an atomic
count says which) adds them up in a fixed order and finishes the tile, so the reduction needs no
kernel of its own: the MLP's down projection (K = 3,072) took 6.2 us in shares of 384 against 9.5
us whole. x is tiny and every program reads all of it (from L2). The activation and the residual
add act on the float32 accumulator before the one store. SwiGLU's weight holds the gate's rows, then
the up projection's (model.MLP): a program multiplies both blocks of BLOCK_N rows and stores
silu(gate) * up, so the hidden activations never leave registers before that.

The norm. RMSNorm(x) W^T = ((x * gain) W^T) / rms(x), row by row, so it splits in two: the product
that makes x (the residual add before the norm) also stores x * gain and its tile's part of each
row's sum of squares (norm=...), and the product after it takes those (a Normed), multiplies the
rows unscaled and divides each by rms(x) after the dot. Normalising the rows on their way into the
dot instead was measured 2.5 us a product slower than the norm's own kernel (our reading, not
profiled: scaled rows go through registers, where plain rows are copied straight to shared
memory); split, the step lost its 23 norm kernels (notes/kernel.md).

Products run in the dtype of the weights (bf16 for a model in bf16), or autocast's when autocast is
on (weights in float32 are then rounded to it tile by tile, as autocast rounds them for nn.Linear),
accumulated in float32. Float32 products ask for "ieee", as attention_triton.py's do.

Layout: imports and constants, the kernel and its epilogue, the host launcher and the custom-op
wiring, and last the public entries, Normed and linear_decode_triton.
"""

import os
from typing import NamedTuple, Optional

import torch
import triton
import triton.language as tl

from attention_decode_triton import arrival_counts

_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
ACTIVATIONS = ("none", "gelu", "swiglu")
_DOT_DTYPES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


# -----------------------------------------------------------------------------
# kernel
#
# Strides are named s<tensor><axis>: m a row of x (a sequence of the batch), n a column of the
# output (a row of W); the last axis of every tensor is contiguous.

@triton.jit
def _to_dot_dtype(t, DOT: tl.constexpr):
    if DOT == "bf16":
        t = t.to(tl.bfloat16)
    elif DOT == "fp16":
        t = t.to(tl.float16)
    else:
        t = t.to(tl.float32)
    return t


@triton.jit
def _linear_decode(X, W, RES, Y, GAIN, Y_GAINED, SQUARES_OUT, SQUARES_IN, WS, ARRIVALS, M, N, K, n_parts, eps, k_len,
                   sxm, swn, srm, sym, sgm,
                   ACT: tl.constexpr, RESIDUAL: tl.constexpr, NORM_OUT: tl.constexpr, NORM_IN: tl.constexpr,
                   SPLIT_K: tl.constexpr, DOT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   BLOCK_K: tl.constexpr, BLOCK_PARTS: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # output columns
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)  # rows of x
    offs_k = tl.arange(0, BLOCK_K)
    k_lo = tl.program_id(2) * k_len  # this program's share of K, [k_lo, k_hi): all of it without SPLIT_K
    k_hi = tl.minimum(k_lo + k_len, K)
    n_ok, m_ok = offs_n < N, offs_m < M
    if NORM_IN:  # x is a norm's input times its gain; each row's sum of squares comes in n_parts pieces
        offs_p = tl.arange(0, BLOCK_PARTS)
        parts = tl.load(SQUARES_IN + offs_p[:, None] * M + offs_m[None, :],
                        mask=(offs_p < n_parts)[:, None] & m_ok[None, :], other=0.0)  # (BLOCK_PARTS, BLOCK_M)
        row_scale = tl.rsqrt(tl.sum(parts, 0) / K + eps)  # (BLOCK_M,): RMSNorm's 1 / rms of each row
    else:
        row_scale = tl.zeros([BLOCK_M], dtype=tl.float32)  # unused
    acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)  # the output transposed: tl.dot wants >= 16 rows
    acc_up = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)  # SwiGLU's up projection
    for k0 in range(k_lo, k_hi, BLOCK_K):
        k_ok = k0 + offs_k < k_hi
        x = tl.load(X + offs_m[:, None] * sxm + (k0 + offs_k)[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        x = _to_dot_dtype(x, DOT)
        w_mask = n_ok[:, None] & k_ok[None, :]
        w = tl.load(W + offs_n[:, None] * swn + (k0 + offs_k)[None, :], mask=w_mask, other=0.0)
        acc = tl.dot(_to_dot_dtype(w, DOT), tl.trans(x), acc, input_precision="ieee")
        if ACT == "swiglu":  # the up projection's rows come N after the gate's
            up = tl.load(W + (N + offs_n)[:, None] * swn + (k0 + offs_k)[None, :], mask=w_mask, other=0.0)
            acc_up = tl.dot(_to_dot_dtype(up, DOT), tl.trans(x), acc_up, input_precision="ieee")
    last = True  # a product not split along K finishes in every program
    if SPLIT_K:  # each share's sums to the workspace; the last of a tile's shares to finish adds them up
        tile = tl.program_id(1) * tl.num_programs(0) + tl.program_id(0)
        n_shares = tl.num_programs(2)
        local = tl.arange(0, BLOCK_N)[:, None] * BLOCK_M + tl.arange(0, BLOCK_M)[None, :]
        share = (tile * n_shares + tl.program_id(2)) * 2 * BLOCK_N * BLOCK_M  # (acc, acc_up) of each share
        tl.store(WS + share + local, acc)
        if ACT == "swiglu":
            tl.store(WS + share + BLOCK_N * BLOCK_M + local, acc_up)
        # The barrier orders every thread's stores before the count, whose atomic add (acq_rel,
        # GPU scope, the default) publishes them to the program that reads them.
        tl.debug_barrier()
        last = tl.atomic_add(ARRIVALS + tile, 1) == n_shares - 1
        if last:  # in a fixed order, whoever arrives last: the same bits at every launch
            acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
            acc_up = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
            for i in range(0, n_shares):
                share = (tile * n_shares + i) * 2 * BLOCK_N * BLOCK_M
                acc += tl.load(WS + share + local, cache_modifier=".cg")  # through L2: other SMs wrote them
                if ACT == "swiglu":
                    acc_up += tl.load(WS + share + BLOCK_N * BLOCK_M + local, cache_modifier=".cg")
            tl.store(ARRIVALS + tile, 0)  # zero again for the next launch
    if last:
        _finish(acc, acc_up, row_scale, RES, Y, GAIN, Y_GAINED, SQUARES_OUT, M, N, offs_m, offs_n, m_ok, n_ok,
                srm, sym, sgm, ACT, RESIDUAL, NORM_OUT, NORM_IN)


@triton.jit
def _finish(acc, acc_up, row_scale, RES, Y, GAIN, Y_GAINED, SQUARES_OUT, M, N, offs_m, offs_n, m_ok, n_ok,
            srm, sym, sgm, ACT: tl.constexpr, RESIDUAL: tl.constexpr, NORM_OUT: tl.constexpr, NORM_IN: tl.constexpr):
    # what follows the product, on the float32 sums of a tile of the output (transposed), and the store
    if NORM_IN:  # norm(x) W^T = (x * gain) W^T / rms(x), row by row: the rows go to the dot unscaled
        acc = acc * row_scale[None, :]
        acc_up = acc_up * row_scale[None, :]
    if ACT == "gelu":  # exact, as F.gelu's default: x (1 + erf(x / sqrt(2))) / 2
        acc = 0.5 * acc * (1.0 + tl.erf(acc * 0.7071067811865476))
    elif ACT == "swiglu":
        acc = acc / (1.0 + tl.exp(-acc)) * acc_up  # silu(gate) * up
    out_mask = n_ok[:, None] & m_ok[None, :]
    if RESIDUAL:
        acc += tl.load(RES + offs_m[None, :] * srm + offs_n[:, None], mask=out_mask, other=0.0).to(tl.float32)
    y = acc.to(Y.dtype.element_ty)
    tl.store(Y + offs_m[None, :] * sym + offs_n[:, None], y, mask=out_mask)
    if NORM_OUT:  # what the next RMSNorm needs of y, as the next product takes it (NORM_IN)
        y = y.to(tl.float32)  # the squares of y as stored, which the norm would read
        gain = tl.load(GAIN + offs_n, mask=n_ok, other=0.0).to(tl.float32)
        tl.store(Y_GAINED + offs_m[None, :] * sgm + offs_n[:, None], (y * gain[:, None]).to(Y_GAINED.dtype.element_ty),
                 mask=out_mask)
        tl.store(SQUARES_OUT + tl.program_id(0) * M + offs_m, tl.sum(y * y, 0), mask=m_ok)  # this block's part


# -----------------------------------------------------------------------------
# host launcher and the custom-op wiring

def _config(K, N):
    if _INTERPRET:  # small tiles, so that the CPU tests cross many tile edges (and shares of K) quickly
        return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, num_warps=1, num_stages=1, shares=2 if K > 32 else 1)
    # The fastest, or within 1% of it, of 19 to 40 candidates for each of the five products of a
    # 12 x 768 model at batch 8 (vocabulary 8192), each timed alone on an H100 as Block.decode calls
    # it, the norm split around it (notes/kernel.md). Always 16 columns: many programs, so that most
    # SMs read the weight at once. A long K (the MLP's down projection) in shares of 384, each
    # program one share: 48 programs of 3,072 took 9.5 us, 384 of 384 6.2 us. A narrow output
    # (N <= K, the attention's projection) with 4 warps and tiles of 256 of K: 3.96 against 4.3 us.
    if K >= 2048:
        return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=128, num_warps=2, num_stages=3, shares=K // 384)
    if N <= K:
        return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=256, num_warps=4, num_stages=3, shares=1)
    return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=128, num_warps=2, num_stages=4, shares=1)


def _launch_shape(M, N, K):
    """The kernel's settings, the length of K per share and the grid (columns, rows, shares): what
    the op launches and what its fake must promise."""
    cfg = dict(_config(K, N))
    shares = cfg.pop("shares")
    k_len = triton.cdiv(triton.cdiv(K, shares), cfg["BLOCK_K"]) * cfg["BLOCK_K"]  # whole tiles of K per share
    return cfg, k_len, (triton.cdiv(N, cfg["BLOCK_N"]), triton.cdiv(M, cfg["BLOCK_M"]), triton.cdiv(K, k_len))


def _out_width(weight, activation):  # SwiGLU's weight holds two blocks of rows, gate and up, for one output
    return weight.shape[0] // 2 if activation == "swiglu" else weight.shape[0]


# A custom op, as the attention kernels are: torch.compile keeps each product one opaque node of
# the decoding step's graph and fuses only the small operations between them. It returns y, and
# with gain (NORM_OUT) y * gain and the squares' parts too.
@torch.library.custom_op("swan::linear_decode", mutates_args=())
def _linear_op(x: torch.Tensor, weight: torch.Tensor, residual: Optional[torch.Tensor], squares: Optional[torch.Tensor],
               gain: Optional[torch.Tensor], eps: float, activation: str, dot: str,
               out_dtype: torch.dtype, gained_dtype: torch.dtype) -> list[torch.Tensor]:
    M, K = x.shape
    N = _out_width(weight, activation)
    y = x.new_empty(M, N, dtype=out_dtype)
    cfg, k_len, grid = _launch_shape(M, N, K)
    gained, squares_out = y, y  # placeholders without a norm after
    if gain is not None:
        gained = x.new_empty(M, N, dtype=gained_dtype)
        squares_out = x.new_empty(grid[0], M, dtype=torch.float32)
    workspace = arrivals = y  # placeholders without shares of K
    if grid[2] > 1:
        workspace = x.new_empty(grid[0] * grid[1] * grid[2] * 2 * cfg["BLOCK_N"] * cfg["BLOCK_M"], dtype=torch.float32)
        arrivals = arrival_counts(x.device, grid[0] * grid[1])
    n_parts = 1 if squares is None else squares.shape[0]
    _linear_decode[grid](x, weight, x if residual is None else residual, y, y if gain is None else gain, gained,
                         squares_out, x if squares is None else squares, workspace, arrivals, M, N, K, n_parts, eps,
                         k_len, x.stride(0), weight.stride(0), 0 if residual is None else residual.stride(0),
                         y.stride(0), gained.stride(0), ACT=activation, RESIDUAL=residual is not None,
                         NORM_OUT=gain is not None, NORM_IN=squares is not None, SPLIT_K=grid[2] > 1, DOT=dot,
                         BLOCK_PARTS=triton.next_power_of_2(n_parts), **cfg)
    return [y] if gain is None else [y, gained, squares_out]


@_linear_op.register_fake
def _(x, weight, residual, squares, gain, eps, activation, dot, out_dtype, gained_dtype):
    M, N = x.shape[0], _out_width(weight, activation)
    y = x.new_empty(M, N, dtype=out_dtype)
    if gain is None:
        return [y]
    n_parts = _launch_shape(M, N, x.shape[1])[2][0]  # the grid's blocks of columns
    return [y, x.new_empty(M, N, dtype=gained_dtype), x.new_empty(n_parts, M, dtype=torch.float32)]


# -----------------------------------------------------------------------------
# public entry


class Normed(NamedTuple):
    """RMSNorm(x) as the next product's input, left for that product to finish (the output of
    linear_decode_triton(..., norm=...)): x times the norm's gain, in the product's dtype, and the
    sum of squares of each row of x in pieces, one per block of columns of the product that made
    x. The product divides its rows by rms(x) after the dot: norm(x) W^T = (x * gain) W^T / rms(x)."""
    gained: torch.Tensor  # (..., K)
    squares: torch.Tensor  # (n_parts, rows) float32
    eps: float  # the norm's


def linear_decode_triton(x, weight, activation="none", residual=None, norm=None):
    """act(x @ weight^T) + residual as one kernel, for the few rows of a decoding step.

    x (..., K), any number of leading dims (a decoding step's (B, 1, K)), or a Normed: RMSNorm(x)
    finished inside this product; weight (N, K), or with activation "swiglu" (2 * hidden, K), the
    gate's rows then the up projection's; activation "none", "gelu" (exact, F.gelu's default) or
    "swiglu" (silu(gate) * up); residual None or (..., N), added last; norm None or an nn.RMSNorm
    of width N that the result goes through before the next product: then the result comes with a
    Normed of it for that product, (y, Normed), so the norm needs no kernel of its own. The product
    in weight's dtype, or autocast's where autocast is on, accumulated in float32; the result in
    that dtype, or with a residual in the wider of it and the residual's, as `residual +
    nn.Linear(...)` would give. CUDA tensors, or Triton's interpreter on the CPU. Returns (..., N),
    with swiglu (..., hidden)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    normed = x if isinstance(x, Normed) else None
    x = x.gained if normed else x
    if not (x.is_cuda or _INTERPRET):
        raise ValueError("the Triton decoding kernels need CUDA tensors (or TRITON_INTERPRET=1 on the CPU)")
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
    if dtype not in _DOT_DTYPES:
        raise ValueError(f"the Triton decoding matmul takes bf16, fp16 or fp32 weights, got {dtype}")
    K = x.shape[-1]
    rows = x.reshape(-1, K)
    rows = rows if rows.stride(-1) == 1 else rows.contiguous()
    out_dtype, N = dtype, _out_width(weight, activation)
    if residual is not None:
        if residual.shape[-1] != N:
            raise ValueError(f"the residual's last dim {residual.shape[-1]} is not the output's {N}")
        out_dtype = torch.promote_types(dtype, residual.dtype)
        residual = residual.reshape(rows.shape[0], -1)
        residual = residual if residual.stride(-1) == 1 else residual.contiguous()
    if norm is not None and (norm.weight is None or norm.weight.shape != (N,)):
        raise ValueError(f"the norm after the product needs a gain of the output's width {N}")
    out = _linear_op(rows, weight, residual, normed.squares if normed else None, None if norm is None else norm.weight,
                     normed.eps if normed else 0.0, activation, _DOT_DTYPES[dtype], out_dtype, dtype)
    y = out[0].view(*x.shape[:-1], N)
    if norm is None:
        return y
    # nn.RMSNorm's default eps: the machine epsilon of the dtype it computes in, float32 for half
    # precision (not bf16's own, 65,536 times larger)
    eps = norm.eps if norm.eps is not None else torch.finfo(torch.promote_types(out_dtype, torch.float32)).eps
    return y, Normed(out[1].view(*x.shape[:-1], N), out[2], eps)
