"""
The matrix products of a decoding step as Triton kernels, each with what follows it folded in: the
GELU or SwiGLU, or the residual add. model.Block.decode uses them when the decoding backend is
"triton" (GPT.set_decode_backend); the reference they equal is the model's own path, nn.Linear,
then F.gelu or F.silu, or an add.

Why. At decoding time a product is x (M, K) @ W^T with M the batch, a few rows, and W (N, K) a
layer's weight: it reads W once and does 2 M flops per weight read, so it is bound by memory, and
at the sizes of a small model by latency. Measured on an H100 inside a CUDA graph (notes/kernel.md,
a 12 x 768 model at batch 8): its four products took 3.6-7.0 us each in cuBLAS, and each small
kernel after one (the GELU, the residual add, cuBLAS's split-K reduce) 1-2 us more, most of every
one a fixed cost of being a kernel rather than bytes moved. This kernel takes 2.9-6.5 us for the
same products, and the residual add it folds in 0.2-0.4 us. Folding the RMSNorm before a product
in as well was measured and left out: 2.5 us a product slower than the product alone, more than
the norm's own kernel (our reading, not profiled: the normalised rows go through registers, where
plain rows can be copied straight to shared memory).

How. One program owns BLOCK_N output columns and BLOCK_M rows and walks the whole K in tiles of
BLOCK_K: narrow column blocks make many programs, so that the weight's bytes are read by most SMs at
once (a product of 768 columns is 48 programs). x is tiny and every program reads all of it (from
L2). The activation and the residual add act on the float32 accumulator before the one store. SwiGLU's weight holds the
gate's rows, then the up projection's (model.MLP): a program multiplies both blocks of BLOCK_N rows
and stores silu(gate) * up, so the hidden activations never leave registers before that.

Products run in the dtype of the weights (bf16 for a model in bf16), or autocast's when autocast is
on (weights in float32 are then rounded to it tile by tile, as autocast rounds them for nn.Linear),
accumulated in float32. Float32 products ask for "ieee", as attention_triton.py's do.

Layout: imports and constants, the kernel, the host launcher and the custom-op wiring, and last the
public entry, linear_decode_triton.
"""

import os
from typing import Optional

import torch
import triton
import triton.language as tl

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
def _linear_decode(X, W, RES, Y, M, N, K, sxm, swn, srm, sym,
                   ACT: tl.constexpr, RESIDUAL: tl.constexpr, DOT: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # output columns
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)  # rows of x
    offs_k = tl.arange(0, BLOCK_K)
    n_ok, m_ok = offs_n < N, offs_m < M
    acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)  # the output transposed: tl.dot wants >= 16 rows
    acc_up = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)  # SwiGLU's up projection
    for k0 in range(0, K, BLOCK_K):
        k_ok = k0 + offs_k < K
        x = tl.load(X + offs_m[:, None] * sxm + (k0 + offs_k)[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        x = _to_dot_dtype(x, DOT)
        w_mask = n_ok[:, None] & k_ok[None, :]
        w = tl.load(W + offs_n[:, None] * swn + (k0 + offs_k)[None, :], mask=w_mask, other=0.0)
        acc = tl.dot(_to_dot_dtype(w, DOT), tl.trans(x), acc, input_precision="ieee")
        if ACT == "swiglu":  # the up projection's rows come N after the gate's
            up = tl.load(W + (N + offs_n)[:, None] * swn + (k0 + offs_k)[None, :], mask=w_mask, other=0.0)
            acc_up = tl.dot(_to_dot_dtype(up, DOT), tl.trans(x), acc_up, input_precision="ieee")
    if ACT == "gelu":  # exact, as F.gelu's default: x (1 + erf(x / sqrt(2))) / 2
        acc = 0.5 * acc * (1.0 + tl.erf(acc * 0.7071067811865476))
    elif ACT == "swiglu":
        acc = acc / (1.0 + tl.exp(-acc)) * acc_up  # silu(gate) * up
    out_mask = n_ok[:, None] & m_ok[None, :]
    if RESIDUAL:
        acc += tl.load(RES + offs_m[None, :] * srm + offs_n[:, None], mask=out_mask, other=0.0).to(tl.float32)
    tl.store(Y + offs_m[None, :] * sym + offs_n[:, None], acc.to(Y.dtype.element_ty), mask=out_mask)


# -----------------------------------------------------------------------------
# host launcher and the custom-op wiring

def _config(K):
    if _INTERPRET:  # small tiles, so that the CPU tests cross many tile edges quickly
        return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, num_warps=1, num_stages=1)
    # The fastest, or within 2% of it, of 24 candidates for each of the four products of a 12 x 768
    # model at batch 8 timed alone on an H100, and of 18 with the residual add folded in
    # (notes/kernel.md): 16 columns, 256 of K, two warps; four stages for the long K of the MLP's
    # down projection, three elsewhere.
    return dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=256, num_warps=2, num_stages=4 if K >= 2048 else 3)


def _out_width(weight, activation):  # SwiGLU's weight holds two blocks of rows, gate and up, for one output
    return weight.shape[0] // 2 if activation == "swiglu" else weight.shape[0]


# A custom op, as the attention kernels are: torch.compile keeps each product one opaque node of
# the decoding step's graph and fuses only the small operations between them.
@torch.library.custom_op("swan::linear_decode", mutates_args=())
def _linear_op(x: torch.Tensor, weight: torch.Tensor, residual: Optional[torch.Tensor], activation: str, dot: str,
               out_dtype: torch.dtype) -> torch.Tensor:
    M, K = x.shape
    N = _out_width(weight, activation)
    y = x.new_empty(M, N, dtype=out_dtype)
    cfg = _config(K)
    grid = (triton.cdiv(N, cfg["BLOCK_N"]), triton.cdiv(M, cfg["BLOCK_M"]))
    _linear_decode[grid](x, weight, x if residual is None else residual, y, M, N, K,
                         x.stride(0), weight.stride(0), 0 if residual is None else residual.stride(0), y.stride(0),
                         ACT=activation, RESIDUAL=residual is not None, DOT=dot, **cfg)
    return y


@_linear_op.register_fake
def _(x, weight, residual, activation, dot, out_dtype):
    return x.new_empty(x.shape[0], _out_width(weight, activation), dtype=out_dtype)


# -----------------------------------------------------------------------------
# public entry


def linear_decode_triton(x, weight, activation="none", residual=None):
    """act(x @ weight^T) + residual as one kernel, for the few rows of a decoding step.

    x (..., K), any number of leading dims (a decoding step's (B, 1, K)); weight (N, K), or with
    activation "swiglu" (2 * hidden, K), the gate's rows then the up projection's; activation
    "none", "gelu" (exact, F.gelu's default) or "swiglu" (silu(gate) * up); residual None or
    (..., N), added last. The product in weight's dtype, or autocast's where autocast is on,
    accumulated in float32; the result in that dtype, or with a residual in the wider of it and the
    residual's, as `residual + nn.Linear(...)` would give. CUDA tensors, or Triton's interpreter on
    the CPU. Returns (..., N), with swiglu (..., hidden)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
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
    y = _linear_op(rows, weight, residual, activation, _DOT_DTYPES[dtype], out_dtype)
    return y.view(*x.shape[:-1], y.shape[-1])
