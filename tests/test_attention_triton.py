"""The Triton path of attention() against the dense float64 reference of tests/reference.py.

Without a GPU the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET)
in float32, which reaches float32 rounding; on a GPU the same cases run there, and the tests
marked cuda add bf16/fp16, larger shapes, and torch.compile."""

import pytest
import torch

from attention import attention
from reference import reference, rel_err

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"
cuda_only = pytest.mark.skipif(not CUDA, reason="needs a GPU")
# a strongly negative sigmoid logit may overflow exp2 to inf (weight 0, as meant); numpy says so
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp2:RuntimeWarning")


def inputs(B, H, Tq, Tk, D, dtype=torch.float32, seed=0):
    g = torch.Generator(device=DEV).manual_seed(seed)
    return [torch.randn(B, H, T, D, generator=g, device=DEV).to(dtype).requires_grad_() for T in (Tq, Tk, Tk)]


def slopes_for(H, seed=0):
    # balanced ALiBi: alternating signs, magnitudes 2^-k
    return torch.tensor([(-1) ** h * 2.0 ** -(h // 2 + 1) for h in range(H)], device=DEV)


def check(q, k, v, window, kind, alibi, tol, grad_tol, scale=None):
    slopes = slopes_for(q.shape[1]) if alibi else None
    out = attention(q, k, v, window=window, kind=kind, alibi_slopes=slopes, scale=scale, backend="triton")
    ref = reference(q, k, v, window, kind, slopes, scale)
    assert out.dtype == q.dtype and out.shape == q.shape
    assert rel_err(out, ref) < tol
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out.double())
    for name, g, rg in zip("qkv", grads, ref_grads):
        assert g.dtype == q.dtype
        assert rel_err(g, rg) < grad_tol, name


# Not the full product: every value of each axis appears, and the pairs that matter meet
# (windows smaller than, equal to and larger than a block; global with both kinds and ALiBi).
CASES = [  # T, W, D, kind, alibi
    (67, 5, 16, "softmax", False),
    (67, None, 64, "sigmoid", True),
    (97, 9, 32, "sigmoid", True),
    (97, 64, 16, "softmax", True),
    (130, 40, 64, "softmax", False),
    (130, 5, 32, "sigmoid", False),
    (130, None, 16, "softmax", True),
    (150, 64, 32, "sigmoid", True),
    (150, 9, 64, "softmax", True),
    (150, None, 32, "softmax", False),
    (97, 40, 64, "sigmoid", False),
]


@pytest.mark.parametrize("T,window,D,kind,alibi", CASES)
def test_matches_float64_reference(T, window, D, kind, alibi):
    q, k, v = inputs(2, 2, T, T, D, seed=T + D)
    check(q, k, v, window, kind, alibi, tol=1e-5, grad_tol=1e-5)


@pytest.mark.parametrize("window", [5, 9, 40, 64, None])
@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("softmax", True), ("sigmoid", False), ("sigmoid", True)])
def test_every_window_and_mode(window, kind, alibi):
    q, k, v = inputs(1, 2, 130, 130, 16, seed=window or 0)
    check(q, k, v, window, kind, alibi, tol=1e-5, grad_tol=1e-5)


@pytest.mark.parametrize("Tq", [1, 7, 64])
@pytest.mark.parametrize("window,kind,alibi", [(9, "softmax", False), (40, "sigmoid", True), (None, "softmax", True)])
def test_kv_cache_form(Tq, window, kind, alibi):
    # The queries are the last Tq of 97 positions: the same rows as the full computation.
    # Gradients too: keys no query sees must get exactly zero.
    q, k, v = inputs(1, 2, Tq, 97, 32, seed=Tq)
    check(q, k, v, window, kind, alibi, tol=1e-5, grad_tol=1e-5)


def test_strided_inputs_and_custom_scale():
    # the model's layout: (B, T, H, D) viewed as (B, H, T, D) through a transpose
    g = torch.Generator(device=DEV).manual_seed(1)
    q, k, v = (torch.randn(1, 70, 3, 16, generator=g, device=DEV).transpose(1, 2).requires_grad_() for _ in range(3))
    check(q, k, v, 9, "softmax", True, tol=1e-5, grad_tol=1e-5, scale=0.3)


def test_inference_launches_the_kernel_without_the_custom_op(monkeypatch):
    # no gradient needed and no torch.compile: the kernel is launched directly (the op's host-side
    # dispatch is what a short prefill pays per layer); the result is the op's, bit for bit
    import attention_triton as module

    q, k, v = inputs(2, 3, 45, 67, 32)
    slopes = slopes_for(3)
    through_op = attention(q, k, v, window=9, alibi_slopes=slopes, backend="triton")
    calls = []
    op = module._fwd_op
    monkeypatch.setattr(module, "_fwd_op", lambda *a: calls.append(a) or op(*a))
    with torch.no_grad():
        direct = attention(q, k, v, window=9, alibi_slopes=slopes, backend="triton")
    assert calls == []
    assert torch.equal(direct, through_op.detach())
    assert rel_err(direct, reference(q, k, v, 9, "softmax", slopes, None)) < 1e-5
    attention(q, k, v, window=9, alibi_slopes=slopes, backend="triton")  # gradients wanted: through the op
    assert len(calls) == 1


def test_auto_backend_choice(monkeypatch):
    # Triton on CUDA, except plain global softmax, which SDPA's flash kernel does faster.
    import attention as module

    calls = []
    monkeypatch.setattr(module, "window_attention_triton", lambda *a: calls.append(a[3:5]) or a[0])
    q, k, v = inputs(1, 2, 8, 8, 16)
    module.attention(q, k, v, window=4)
    module.attention(q, k, v, window=4, kind="sigmoid")
    module.attention(q, k, v)
    module.attention(q, k, v, kind="sigmoid")
    assert calls == ([(4, "softmax"), (4, "sigmoid"), (None, "sigmoid")] if CUDA else [])


def test_torch_compile_one_graph():
    # The model calls attention() inside torch.compile: the kernels are custom ops, so the whole
    # function must trace into one graph (fullgraph=True), forward and backward matching eager.
    def f(q, k, v, slopes):
        a = attention(q, k, v, window=40, backend="triton")
        b = attention(q, k, v, window=40, kind="sigmoid", alibi_slopes=slopes, backend="triton")
        return (a * b).sum()

    dtype, backend, tol = (torch.bfloat16, "inductor", 1e-2) if CUDA else (torch.float32, "aot_eager", 1e-5)
    q, k, v = inputs(2, 4, 97, 97, 32, dtype=dtype)
    slopes = slopes_for(4)
    eager = torch.autograd.grad(f(q, k, v, slopes), (q, k, v))
    compiled = torch.compile(f, fullgraph=True, backend=backend)
    grads = torch.autograd.grad(compiled(q, k, v, slopes), (q, k, v))
    for g, e in zip(grads, eager):
        assert rel_err(g, e) < tol


def test_torch_compile_one_graph_without_gradients():
    # inference under torch.compile: the direct launch is for eager calls only; traced, the
    # kernel must still be the custom op, or dynamo would trace into the launch
    def f(q, k, v):
        return attention(q, k, v, window=40, backend="triton") * 2

    dtype, backend = (torch.bfloat16, "inductor") if CUDA else (torch.float32, "aot_eager")
    q, k, v = (t.detach() for t in inputs(2, 4, 97, 97, 32, dtype=dtype))
    torch._dynamo.reset()
    with torch.no_grad():
        eager = f(q, k, v)
        compiled = torch.compile(f, fullgraph=True, backend=backend)(q, k, v)
    assert torch.equal(compiled, eager)


# ---- GPU only ---------------------------------------------------------------------------


@cuda_only
@pytest.mark.parametrize("B,H,T,D,W", [(1, 2, 4096, 64, 512), (1, 2, 4096, 128, 512), (2, 3, 1000, 64, 333),
                                       (1, 2, 1000, 128, None), (2, 2, 300, 16, 33)])
@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("sigmoid", True)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_half_precision(B, H, T, D, W, kind, alibi, dtype):
    q, k, v = inputs(B, H, T, T, D, dtype=dtype, seed=T + D)
    check(q, k, v, W, kind, alibi, tol=1e-2, grad_tol=1e-2)
    # and as close to the float64 reference as the PyTorch path in the same precision
    slopes = slopes_for(H) if alibi else None
    with torch.no_grad():
        ours = attention(q, k, v, window=W, kind=kind, alibi_slopes=slopes, backend="triton")
        theirs = attention(q, k, v, window=W, kind=kind, alibi_slopes=slopes, backend="torch")
        ref = reference(q, k, v, W, kind, slopes)
    assert rel_err(ours, ref) < 2 * rel_err(theirs, ref) + 1e-3


@cuda_only
@pytest.mark.parametrize("Tq", [1, 100])
def test_gpu_kv_cache_bf16(Tq):
    q, k, v = inputs(2, 4, Tq, 2000, 64, dtype=torch.bfloat16)
    for kind, alibi in [("softmax", False), ("sigmoid", True)]:
        slopes = slopes_for(4) if alibi else None
        out = attention(q, k, v, window=512, kind=kind, alibi_slopes=slopes, backend="triton")
        assert rel_err(out, reference(q, k, v, 512, kind, slopes)) < 1e-2


# Grouped-query attention: k, v with fewer heads than q. The kernels read kv head h // G and sum
# each kv head's gradient over its group; the definition, k and v repeated per query head, is the
# float64 reference's input (repeat_interleave in the test only: its backward sums each group).
GQA_CASES = [  # H, Hkv, Tq, Tk, W, kind, alibi
    (4, 2, 67, 67, 5, "softmax", False),
    (6, 2, 67, 67, None, "sigmoid", True),
    (4, 1, 67, 67, 40, "softmax", True),
    (6, 3, 7, 97, 9, "sigmoid", False),  # the KV-cache form: the last 7 of 97 positions
    (4, 2, 1, 67, None, "softmax", True),  # one query: a decoding step on the kernel
]


@pytest.mark.parametrize("H,Hkv,Tq,Tk,window,kind,alibi", GQA_CASES)
def test_grouped_query_attention_equals_repeated_kv(H, Hkv, Tq, Tk, window, kind, alibi):
    g = torch.Generator(device=DEV).manual_seed(H + Tq)
    q = torch.randn(2, H, Tq, 16, generator=g, device=DEV).requires_grad_()
    k, v = (torch.randn(2, Hkv, Tk, 16, generator=g, device=DEV).requires_grad_() for _ in range(2))
    slopes = slopes_for(H) if alibi else None
    out = attention(q, k, v, window=window, kind=kind, alibi_slopes=slopes, backend="triton")
    k_rep, v_rep = (x.repeat_interleave(H // Hkv, dim=1) for x in (k, v))
    ref = reference(q, k_rep, v_rep, window, kind, slopes)
    assert out.shape == q.shape
    assert rel_err(out, ref) < 1e-5
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out.double())
    for name, gr, rg in zip("qkv", grads, ref_grads):
        assert gr.shape == (q if name == "q" else k).shape
        assert rel_err(gr, rg) < 1e-5, name


@cuda_only
@pytest.mark.parametrize("window,kind,alibi", [(333, "softmax", False), (None, "softmax", False), (333, "sigmoid", True)])
def test_gpu_grouped_query_bf16(window, kind, alibi):
    # SmolLM2's grouping: 9 query heads on 3 key/value heads, head dim 64
    g = torch.Generator(device=DEV).manual_seed(9)
    q = torch.randn(2, 9, 1000, 64, generator=g, device=DEV).bfloat16().requires_grad_()
    k, v = (torch.randn(2, 3, 1000, 64, generator=g, device=DEV).bfloat16().requires_grad_() for _ in range(2))
    slopes = slopes_for(9) if alibi else None
    out = attention(q, k, v, window=window, kind=kind, alibi_slopes=slopes, backend="triton")
    k_rep, v_rep = (x.repeat_interleave(3, dim=1) for x in (k, v))
    ref = reference(q, k_rep, v_rep, window, kind, slopes)
    assert out.dtype == torch.bfloat16 and rel_err(out, ref) < 1e-2
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out.double())
    for name, got, want in zip("qkv", grads, ref_grads):
        assert got.shape == (q if name == "q" else k).shape and rel_err(got, want) < 1e-2, name
