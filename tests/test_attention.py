"""The PyTorch path of attention() against the dense float64 reference of tests/reference.py."""

import pathlib
import subprocess
import sys

import pytest
import torch

from attention import attention, attention_decode
from reference import reference, rel_err


def make_inputs(B, H, Tq, Tk, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, H, T, D, generator=g, requires_grad=True) for T in (Tq, Tk, Tk))
    return q, k, v


SLOPES = torch.tensor([-0.5, 0.25, -0.125])  # one negative, one positive: the balanced kind


@pytest.mark.parametrize("T", [67, 97, 130])
@pytest.mark.parametrize("window", [1, 5, 33, 200, None])
@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("softmax", True), ("sigmoid", False), ("sigmoid", True)])
def test_matches_float64_reference(T, window, kind, alibi):
    q, k, v = make_inputs(2, 3, T, T, 16, seed=T)
    slopes = SLOPES if alibi else None
    out = attention(q, k, v, window=window, kind=kind, alibi_slopes=slopes, backend="torch")
    ref = reference(q, k, v, window, kind, slopes)
    assert out.dtype == torch.float32 and out.shape == q.shape
    assert rel_err(out, ref) < 1e-5
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out.double())
    for name, g, rg in zip("qkv", grads, ref_grads):
        assert rel_err(g, rg) < 1e-4, name


@pytest.mark.parametrize("Tq", [1, 7, 67])
@pytest.mark.parametrize("window", [5, 33, None])
@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("sigmoid", True)])
def test_kv_cache_form(Tq, window, kind, alibi):
    # The queries are the last Tq of 97 positions: the same rows as the full computation.
    q, k, v = make_inputs(1, 3, 97, 97, 32, seed=Tq)
    slopes = SLOPES if alibi else None
    full = reference(q, k, v, window, kind, slopes)
    out = attention(q[:, :, -Tq:], k, v, window=window, kind=kind, alibi_slopes=slopes, backend="torch")
    assert rel_err(out, full[:, :, -Tq:]) < 1e-5


@pytest.mark.parametrize("pos", [0, 3, 66])
@pytest.mark.parametrize("window", [5, None])
@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("softmax", True), ("sigmoid", True)])
def test_decode_against_a_static_cache(pos, window, kind, alibi):
    # The query at position pos of a 67-key sequence, against a cache laid out as model.KVCache
    # lays it out: a global buffer of 80 slots (slots past pos hold junk, not yet seen), or a
    # ring of W slots (position p in slot p % W; slots not yet written marked empty).
    q, k, v = make_inputs(2, 3, 67, 67, 16, seed=pos)
    slopes = SLOPES if alibi else None
    ref = reference(q[:, :, :pos + 1], k[:, :, :pos + 1], v[:, :, :pos + 1], window, kind, slopes)[:, :, -1:]
    if window is None:
        k_buf, v_buf = torch.randn(2, 3, 80, 16), torch.randn(2, 3, 80, 16)
        k_buf[:, :, :pos + 1], v_buf[:, :, :pos + 1] = k[:, :, :pos + 1], v[:, :, :pos + 1]
        key_pos = torch.arange(80)
    else:
        key_pos = torch.full((window,), -1)
        k_buf, v_buf = torch.randn(2, 3, window, 16), torch.randn(2, 3, window, 16)
        for p in range(max(0, pos - window + 1), pos + 1):
            key_pos[p % window], k_buf[:, :, p % window], v_buf[:, :, p % window] = p, k[:, :, p], v[:, :, p]
    out = attention_decode(q[:, :, pos:pos + 1], k_buf, v_buf, key_pos, torch.tensor([pos]), kind=kind,
                           alibi_slopes=slopes)
    assert out.shape == (2, 3, 1, 16)
    assert rel_err(out, ref) < 1e-5


def test_custom_scale_and_half_precision():
    q, k, v = make_inputs(1, 2, 67, 67, 16)
    out = attention(q, k, v, window=5, scale=0.3, backend="torch")
    assert rel_err(out, reference(q, k, v, 5, scale=0.3)) < 1e-5
    out16 = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), window=5, backend="torch")
    assert out16.dtype == torch.bfloat16
    assert rel_err(out16, reference(q, k, v, 5)) < 2e-2


def test_bad_arguments():
    q, k, v = make_inputs(1, 1, 8, 8, 16)
    with pytest.raises(ValueError, match="kind"):
        attention(q, k, v, kind="relu")
    with pytest.raises(ValueError, match="window"):
        attention(q, k, v, window=0)
    with pytest.raises(ValueError, match="queries"):
        attention(k[:, :, :4].repeat(1, 1, 3, 1), q, v)
    with pytest.raises(ValueError, match="backend"):
        attention(q, k, v, backend="cuda")


def test_window_path_memory_is_linear_in_T():
    # B=1, H=8, T=16384, D=64, W=256, float32 forward: a T x T matrix alone would be 8.6 GB.
    # Measured in a fresh process as the rise of its peak resident memory over the peak before the
    # call (torch itself, whose size differs between CPU and CUDA builds, and the inputs).
    code = (
        "import resource, torch; from attention import attention;"
        "q, k, v = (torch.randn(1, 8, 16384, 64) for _ in range(3));"
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024;"
        "before = peak(); torch.no_grad().__enter__(); out = attention(q, k, v, window=256, backend='torch');"
        "print(before, peak())"
    )
    root = pathlib.Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    before, after = (int(x) / 1e9 for x in out.stdout.split())
    assert after - before < 1.0, f"peak rose {after - before:.2f} GB (from {before:.2f})"


def repeat_kv(x, H):  # the test's definition of grouped-query attention: k, v copied per query head
    return x.repeat_interleave(H // x.shape[1], dim=1)


@pytest.mark.parametrize("Hkv", [1, 2])
@pytest.mark.parametrize("Tq,window,kind,alibi", [
    (67, 5, "softmax", False), (67, None, "softmax", False),  # None: SDPA with enable_gqa
    (67, 33, "sigmoid", True), (7, None, "softmax", True),  # 7: the last 7 of 67 (KV-cache form)
])
def test_grouped_query_attention_equals_repeated_kv(Hkv, Tq, window, kind, alibi):
    # 6 query heads on Hkv key/value heads: query head h reads kv head h // (6 / Hkv). The k, v
    # gradients are the sums over each group, as autograd through repeat_interleave gives them.
    g = torch.Generator().manual_seed(Hkv + Tq)
    q = torch.randn(2, 6, Tq, 16, generator=g, requires_grad=True)
    k, v = (torch.randn(2, Hkv, 67, 16, generator=g, requires_grad=True) for _ in range(2))
    slopes = torch.tensor([-0.5, 0.25, -0.125, 0.5, -0.25, 0.125]) if alibi else None
    out = attention(q, k, v, window=window, kind=kind, alibi_slopes=slopes, backend="torch")
    repeated = attention(q, repeat_kv(k, 6), repeat_kv(v, 6), window=window, kind=kind, alibi_slopes=slopes,
                         backend="torch")
    ref = reference(q, repeat_kv(k, 6), repeat_kv(v, 6), window, kind, slopes)
    assert out.shape == q.shape
    assert rel_err(out, repeated) < 1e-6 and rel_err(out, ref) < 1e-5
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    rep_grads = torch.autograd.grad(repeated, (q, k, v), grad_out)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad_out.double())
    for name, gr, rg, fg in zip("qkv", grads, rep_grads, ref_grads):
        assert gr.shape == (q if name == "q" else k).shape
        assert rel_err(gr, rg) < 1e-6 and rel_err(gr, fg) < 1e-4, name


@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("sigmoid", True)])
def test_grouped_query_decode(kind, alibi):
    # 6 query heads on 2 cached kv heads, a ring of 5 slots holding positions 62..66
    g = torch.Generator().manual_seed(5)
    q = torch.randn(2, 6, 1, 16, generator=g)
    k, v = torch.randn(2, 2, 5, 16, generator=g), torch.randn(2, 2, 5, 16, generator=g)
    key_pos, pos = torch.tensor([65, 66, 62, 63, 64]), torch.tensor([66])
    slopes = torch.tensor([-0.5, 0.25, -0.125, 0.5, -0.25, 0.125]) if alibi else None
    out = attention_decode(q, k, v, key_pos, pos, kind=kind, alibi_slopes=slopes)
    repeated = attention_decode(q, repeat_kv(k, 6), repeat_kv(v, 6), key_pos, pos, kind=kind, alibi_slopes=slopes)
    order = key_pos.argsort()  # the reference wants the keys in position order
    ref = reference(q, repeat_kv(k, 6)[:, :, order], repeat_kv(v, 6)[:, :, order], None, kind, slopes)
    assert out.shape == (2, 6, 1, 16)
    assert rel_err(out, repeated) < 1e-6 and rel_err(out, ref) < 1e-5


def test_grouped_heads_must_divide():
    q, k, v = make_inputs(1, 6, 8, 8, 16)
    with pytest.raises(ValueError, match="multiple") as e:
        attention(q, k[:, :4], v[:, :4])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="same number of heads"):
        attention(q, k[:, :2], v[:, :3])
    with pytest.raises(ValueError, match="multiple"):
        attention_decode(q[:, :, :1], k[:, :4], v[:, :4], torch.arange(8), torch.tensor([7]))
