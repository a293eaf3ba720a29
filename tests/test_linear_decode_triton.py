"""linear_decode_triton.py, a decoding step's matmul with its activation or residual folded in,
against the model's own modules in float64, and model.Block.decode against Block.forward.

Without a GPU the kernel runs in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET) in
float32, with tiles of 16 rows, 16 columns and 32 of K, so the odd sizes below cross tile edges in
every direction; on a GPU in bf16 as well."""

import pytest
import torch
import torch.nn.functional as F
import triton

from linear_decode_triton import linear_decode_triton
from model import GPT, GPTConfig, KVCache
from reference import rel_err

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def reference(x, weight, activation, residual):
    """The modules one after the other, as model.Block's plain path runs them, in float64."""
    y = F.linear(x.double(), weight.double())
    if activation == "gelu":
        y = F.gelu(y)
    elif activation == "swiglu":
        gate, up = y.chunk(2, dim=-1)
        y = F.silu(gate) * up
    return y if residual is None else y + residual.double()


CASES = [  # rows, K, N, activation, residual
    (3, 67, 37, "none", False),  # one block of rows, columns and K with ragged edges
    (17, 67, 33, "gelu", False),  # two blocks of rows
    (5, 45, 2 * 29, "swiglu", False),  # gate rows 0..28, up rows 29..57
    (8, 100, 21, "none", True),  # the residual add
    (1, 16, 16, "gelu", True),  # both at once, exactly one tile
    (3, 2100, 37, "gelu", True),  # a long K in shares (split-K; on a GPU 5, the last of 52), summed by the last
    (5, 2100, 2 * 29, "swiglu", False),  # the same with both of SwiGLU's halves
]


@pytest.mark.parametrize("rows,K,N,activation,residual", CASES)
def test_matches_the_modules_in_float64(rows, K, N, activation, residual):
    g = torch.Generator().manual_seed(rows * K)
    x = torch.randn(rows, 1, K, generator=g)
    weight = torch.randn(N, K, generator=g) / K ** 0.5
    out_n = N // 2 if activation == "swiglu" else N
    res = torch.randn(rows, 1, out_n, generator=g) if residual else None
    ref = reference(x, weight, activation, res)
    x, weight = x.to(DEV), weight.to(DEV)
    y = linear_decode_triton(x, weight, activation=activation, residual=None if res is None else res.to(DEV))
    assert y.shape == (rows, 1, out_n) and y.dtype == torch.float32
    assert rel_err(y.double().cpu(), ref) < 1e-5  # float32 products ("ieee": no tf32)
    half = torch.bfloat16 if DEV == "cuda" else torch.float16  # the interpreter's bf16 is not faithful
    with torch.autocast(DEV, dtype=half):  # float32 weights, products in autocast's dtype
        y = linear_decode_triton(x, weight, activation=activation, residual=None if res is None else res.to(DEV))
    assert y.dtype == (torch.float32 if residual else half)  # with a residual: the wider of the two
    assert rel_err(y.double().cpu(), ref) < 2e-2
    if DEV == "cuda":  # bf16 weights and rows: a product's rounding, no more
        y = linear_decode_triton(x.bfloat16(), weight.bfloat16(), activation=activation,
                                 residual=None if res is None else res.to(DEV).bfloat16())
        assert y.dtype == torch.bfloat16 and rel_err(y.double().cpu(), ref) < 2e-2


NORM_CASES = [  # rows, K, N, hidden, activation, size of x and r (small: the eps counts)
    (3, 67, 37, 2 * 29, "swiglu", 1.0),
    (17, 45, 50, 21, "gelu", 1.0),
    (5, 45, 50, 21, "gelu", 3e-3),  # mean squares about 1e-5, as large as the eps
    (3, 2100, 37, 2 * 29, "swiglu", 1.0),  # the norm's half in a product in shares of K (on a GPU too)
    (3, 45, 2100, 21, "gelu", 1.0),  # the other half in one: the MLP's down projection, then the next qkv
]


@pytest.mark.parametrize("rows,K,N,hidden,activation,size", NORM_CASES)
def test_a_norm_split_between_two_products_equals_the_modules(rows, K, N, hidden, activation, size):
    # x -> y = x W1^T + r (the residual stream) -> act(RMSNorm(y) W2^T): the first product leaves
    # y * gain and the squares of y by blocks of 16 columns, the second divides its rows by
    # rms(y) after its dot; against nn.RMSNorm between nn.Linears, in float64
    g = torch.Generator().manual_seed(rows + K)
    x, r = size * torch.randn(rows, 1, K, generator=g), size * torch.randn(rows, 1, N, generator=g)
    w1, w2 = torch.randn(N, K, generator=g) / K ** 0.5, torch.randn(hidden, N, generator=g) / N ** 0.5
    norm = torch.nn.RMSNorm(N, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=g)
    y_ref = reference(x, w1, "none", r)
    ref = reference(F.rms_norm(y_ref, (N,), norm.weight.double(), 1e-5), w2, activation, None)
    x, r, w1, w2, norm = x.to(DEV), r.to(DEV), w1.to(DEV), w2.to(DEV), norm.to(DEV)
    y, normed = linear_decode_triton(x, w1, residual=r, norm=norm)
    assert normed.squares.shape == (triton.cdiv(N, 16), rows) and normed.eps == 1e-5
    assert rel_err(y.double().cpu(), y_ref) < 1e-5
    out = linear_decode_triton(normed, w2, activation=activation)
    assert out.shape == ref.shape and rel_err(out.double().cpu(), ref) < 1e-5


def test_the_norm_takes_nn_rmsnorms_default_eps():
    # eps=None: the machine epsilon of the dtype the norm computes in, float32 for half precision
    # (torch.rms_norm's); bf16's or fp16's own would change every row's scale
    x, weight, r = torch.randn(4, 1, 16, device=DEV), torch.randn(16, 16, device=DEV), torch.randn(4, 1, 16, device=DEV)
    norm = torch.nn.RMSNorm(16).to(DEV)
    assert linear_decode_triton(x, weight, residual=r, norm=norm)[1].eps == torch.finfo(torch.float32).eps
    half = linear_decode_triton(x.half(), weight.half(), residual=r.half(), norm=norm.half())[1]
    assert half.eps == torch.finfo(torch.float32).eps
    assert linear_decode_triton(x.double(), weight.float(), residual=r.double(), norm=norm.double())[1].eps == \
        torch.finfo(torch.float64).eps  # a float64 residual stream (the product itself in float32)


def test_the_ops_fake_gives_the_real_shapes_and_dtypes():
    # what torch.compile plans with: the fake's outputs against the kernel's, with and without the
    # norm's half after the product, and torch.library's own checks of the op
    from linear_decode_triton import _linear_op
    x, w, r = torch.randn(5, 40, device=DEV), torch.randn(37, 40, device=DEV), torch.randn(5, 37, device=DEV).half()
    gain, squares = torch.rand(37, device=DEV), torch.rand(3, 5, device=DEV)
    for args in [(x, w, None, None, None, 0.0, "gelu", "fp32", torch.float32, torch.float32),
                 (x, w, r, squares, gain, 1e-6, "none", "fp16", torch.float32, torch.float16)]:
        real = _linear_op(*args)
        with torch._subclasses.fake_tensor.FakeTensorMode() as mode:
            fake = _linear_op(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args))
        assert [(t.shape, t.dtype) for t in fake] == [(t.shape, t.dtype) for t in real]
        torch.library.opcheck(_linear_op, args, test_utils=("test_schema", "test_faketensor"))


def test_bad_arguments():
    x, weight = torch.randn(2, 1, 16, device=DEV), torch.randn(16, 16, device=DEV)
    with pytest.raises(ValueError, match=r"^activation must be one of none, gelu, swiglu, got 'relu'$"):
        linear_decode_triton(x, weight, activation="relu")
    with pytest.raises(ValueError, match=r"takes bf16, fp16 or fp32 weights, got torch.float64$"):
        linear_decode_triton(x.double(), weight.double())
    with pytest.raises(ValueError, match=r"^the residual's last dim 15 is not the output's 16$"):
        linear_decode_triton(x, weight, residual=torch.zeros(2, 1, 15, device=DEV))
    with pytest.raises(ValueError, match=r"^the norm after the product needs a gain of the output's width 16$"):
        linear_decode_triton(x, weight, norm=torch.nn.RMSNorm(15).to(DEV))


@pytest.mark.parametrize("arch,mlp", [("swan", "gelu"), ("swan", "swiglu"), ("swat", "gelu")])
def test_a_decoding_step_through_the_fused_kernels_equals_the_plain_one(arch, mlp):
    # Block.decode (4 fused products per layer and the head's, the window layers' attention from the projection)
    # against Block.forward with the same attention kernel: logits of 7 steps of a GQA swan (an N
    # and an S layer) or swat (sigmoid, ALiBi) past its window (5); compiled, the same to the bit
    # (the interpreter is slow: one compilation is tested)
    torch.manual_seed(0)
    config = GPTConfig.from_arch(arch, vocab_size=97, block_size=16, n_layer=2, n_head=4, n_kv_head=2,
                                 n_embd=32, window=5, mlp=mlp, mlp_hidden=40 if mlp == "swiglu" else 0)
    model = GPT(config).eval()
    with torch.no_grad():  # large weights: attention, not the tied embedding, picks the next token
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5)
    model = model.to(DEV)
    prompt = torch.randint(0, 97, (3, 7), generator=torch.Generator().manual_seed(1)).to(DEV)
    model.set_decode_backend("triton")
    torch._dynamo.reset()
    logits = {}
    for way in ("plain", "fused", "fused, compiled")[:3 if arch == "swan" and mlp == "gelu" else 2]:
        cache = KVCache(config, 3, 19, DEV)
        last, _ = model(prompt, cache=cache)
        # compiled as Inductor would see it (AOTAutograd), run without Inductor: the custom op's
        # schema and fake must carry the step through torch.compile
        compile_step = way == "fused, compiled" and "aot_eager"
        step = plain_decoder(model, cache) if way == "plain" else model.decoder(cache, compile_step=compile_step)
        token, seen = last.argmax(-1), []
        for _ in range(7):
            seen.append(step(token).clone())
            token = seen[-1].argmax(-1)
        logits[way] = torch.cat(seen, dim=1)  # (3, 7, vocab)
    assert rel_err(logits["fused"].double(), logits["plain"].double()) < 1e-5
    assert "fused, compiled" not in logits or torch.equal(logits["fused, compiled"], logits["fused"])
    assert len(set(logits["plain"].argmax(-1).flatten().tolist())) > 3  # varied continuations


def plain_decoder(model, cache):
    """A decoding step through Block's plain path (norm, nn.Linear, ...) with the Triton attention."""
    rope = model.rope_for(cache.max_len, cache.pos_t.device)

    def step(token):
        x = model.transformer.wte(token)
        for block in model.transformer.h:
            x = x + block.attn(block.ln_1(x), rope, cache)
            x = x + block.mlp(block.ln_2(x))
        cache.pos_t += 1
        cache.pos += 1
        return model.lm_head(model.transformer.ln_f(x))

    return step
