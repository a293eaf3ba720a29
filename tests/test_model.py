"""model.py: the five architectures as configurations of one decoder."""

import math

import pytest
import torch
from torch._dynamo.backends.debugging import aot_eager

from attention import attention
from model import ARCHS, GPT, GPTConfig, KVCache, alibi_slopes

SMALL = dict(vocab_size=97, block_size=24, n_layer=4, n_head=4, n_embd=32, window=5)


def make(arch, seed=0, std=None, **overrides):
    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_arch(arch, **{**SMALL, **overrides})).eval()
    if std is not None:
        # GPT-2's init (std 0.02) leaves a fresh model repeating its input token: the tied
        # embedding dominates the logits. Large weights make attention decide the next token.
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, std)
    return model


def tokens(B, T, seed=1):
    return torch.randint(0, SMALL["vocab_size"], (B, T), generator=torch.Generator().manual_seed(seed))


def test_layer_patterns():
    assert [make("swan", n_layer=9).config.layer_kind(i) for i in range(9)] == list("NSSSNSSSN")
    for arch, expect in dict(gpt="G", nope="N", swa="S", swat="S").items():
        model = make(arch)
        assert {block.attn.kind for block in model.transformer.h} == {expect}
    swat = make("swat").transformer.h[0].attn
    assert swat.config.attn == "sigmoid"
    assert torch.equal(swat.alibi_slopes, torch.tensor([-0.5, -0.25, 0.5, 0.25]))
    # standard ALiBi (arXiv 2108.12409): 2^(-8k/H), which is 2^-k only for H = 8
    assert torch.equal(alibi_slopes(4, "negative"), torch.tensor([-0.25, -0.0625, -0.015625, -0.00390625]))
    assert torch.equal(alibi_slopes(8, "negative"), -(2.0 ** -torch.arange(1.0, 9.0)))


def test_any_length_and_loss():
    model = make("swan")
    idx, targets = tokens(2, 67), tokens(2, 67, seed=2)  # past block_size=24: RoPE tables grow
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 67, 97)
    assert abs(loss.item() - math.log(97)) < 0.5  # a fresh model is near uniform
    _, per_token = model(idx, targets, reduction="none")
    assert per_token.shape == (2, 67)
    assert torch.allclose(per_token.mean(), loss)
    last, none = model(idx)
    assert none is None and torch.allclose(last[:, 0], logits[:, -1], atol=1e-5)


def test_window_covering_everything_is_gpt():
    # An S layer whose window reaches every key is a G layer: same weights, same outputs.
    gpt, swa = make("gpt"), make("swa", window=67)
    swa.load_state_dict(gpt.state_dict(), strict=True)
    idx = tokens(2, 67)
    assert torch.allclose(gpt(idx, idx)[0], swa(idx, idx)[0], atol=1e-5)
    swa_short = make("swa", window=5)
    swa_short.load_state_dict(gpt.state_dict())
    assert not torch.allclose(gpt(idx, idx)[0], swa_short(idx, idx)[0], atol=1e-3)


def test_gpt_state_dict_converts_to_swan_and_swat():
    gpt = make("gpt")
    for arch in ("swan", "swat", "nope"):
        model = make(arch, seed=1)
        model.load_state_dict(gpt.state_dict(), strict=True)  # RoPE, window, slopes: no parameters
        assert torch.equal(model.lm_head.weight, gpt.lm_head.weight)


def test_dynamic_scaling_only_in_eval_and_only_with_nope_layers():
    idx = tokens(2, 67)
    for arch in ("swan", "nope"):
        model = make(arch)
        plain = model(idx, idx)[0]
        model.config.scale_base = 16.0
        assert not torch.allclose(model(idx, idx)[0], plain, atol=1e-4), arch  # eval: scaled
        model.train()
        assert torch.allclose(model(idx, idx)[0], plain, atol=1e-6), arch  # training: never
    for arch in ("gpt", "swa"):  # no N layer: nothing to scale
        model = make(arch)
        plain = model(idx, idx)[0]
        model.config.scale_base = 16.0
        assert torch.allclose(model(idx, idx)[0], plain, atol=1e-6), arch


def queries_seen(monkeypatch):
    """A list that every later call of attention() in model.py appends its queries q to."""
    import model as model_module
    seen = []

    def spy(q, k, v, **kw):
        seen.append(q)
        return attention(q, k, v, **kw)

    monkeypatch.setattr(model_module, "attention", spy)
    return seen


def test_dynamic_scaling_formula(monkeypatch):
    # The scaled N layer hands attention() its queries times log(a + n) / log(a), n = 0, 1, ...
    seen = queries_seen(monkeypatch)
    model = make("nope", n_layer=1, scale_base=8.0)
    idx = tokens(1, 13)
    model(idx, idx)
    model.config.scale_base = None
    model(idx, idx)
    scaled_q, plain_q = seen
    n = torch.arange(13, dtype=torch.float32)
    factor = torch.log(8.0 + n) / math.log(8.0)
    assert factor[0] == 1.0 and factor[-1] > 1.4
    assert torch.allclose(scaled_q, plain_q * factor.view(13, 1), atol=1e-6)


def test_dynamic_scaling_from_a_start(monkeypatch):
    # scale_start n0 = 5: queries at n <= 5 as trained, then 1 + log_a((a + n) / (a + n0)), the
    # paper's curve less its rise up to n0 (n = 12: 1 + log(20 / 13) / log(8) = 1.2072)
    seen = queries_seen(monkeypatch)
    model = make("nope", n_layer=1).eval()
    idx = tokens(1, 13)
    model(idx)
    model.set_scale_base(8.0, start=5)
    model(idx)
    plain_q, scaled_q = seen
    factor = scaled_q[..., 0] / plain_q[..., 0]  # (1, H, 13)
    assert torch.allclose(factor[..., :6], torch.ones(6), atol=1e-6)
    assert torch.allclose(factor[0, 0, 12], torch.tensor(1.2072), atol=1e-4)
    assert torch.allclose(factor[0, 0, 6:], 1 + torch.log((8.0 + torch.arange(6, 13)) / 13) / math.log(8), atol=1e-5)
    with pytest.raises(ValueError, match="scale_start must be >= 0"):
        model.set_scale_base(8.0, start=-1)


@pytest.mark.parametrize("arch", ["gpt", "swan", "swat", "nope", "swa"])
def test_cached_greedy_generation_equals_recomputation(arch):
    # 10 prompt + 40 new tokens: past block_size (24) and far past the window (5).
    model = make(arch, std=0.5, scale_base=10.0 if arch in ("swan", "nope") else None).double()
    prompt = tokens(2, 10)
    cached = model.generate(prompt, 40, temperature=0, use_cache=True)
    recomputed = model.generate(prompt, 40, temperature=0, use_cache=False)
    assert cached.shape == (2, 50)
    assert len(set(cached[:, 10:].flatten().tolist())) > 5  # varied continuations, not one token repeated
    assert torch.equal(cached, recomputed)


def test_cache_of_window_layers_is_bounded():
    model = make("swan")
    cache = KVCache(model.config, 1, 50, "cpu")
    model(tokens(1, 30), cache=cache)
    for step in range(20):
        model(tokens(1, 1, seed=step), cache=cache)
    assert cache.pos == 50 and cache.pos_t.item() == 50
    assert [cache.k[layer].shape[2] for layer in range(4)] == [50, 5, 5, 5]  # N keeps all, S a ring of W
    assert cache.nbytes() == 2 * (50 + 3 * 5) * 4 * 8 * 4  # k and v: slots x heads x head dim x fp32
    with pytest.raises(ValueError, match="holds 50 positions"):
        model(tokens(1, 1), cache=cache)


def test_ring_runs_are_the_slots_of_consecutive_positions():
    # swan's S layers keep a ring of window slots (5 here), position p in slot p % 5; the prefill
    # reads and writes it as at most two slices
    config = GPTConfig.from_arch("swan", vocab_size=11, block_size=24, n_layer=4, n_head=2, n_embd=8, window=5)
    cache = KVCache(config, 1, 40, "cpu")
    assert cache.ring_runs(1, 3, 8) == [(3, 5, 3), (0, 3, 5)]  # positions 3, 4 | 5, 6, 7
    assert cache.ring_runs(1, 10, 15) == [(0, 5, 10)]
    assert cache.ring_runs(1, 12, 13) == [(2, 3, 12)]
    assert cache.ring_runs(1, 7, 7) == []
    assert cache.ring_runs(0, 3, 38) == [(3, 38, 3)]  # an N layer: one slot per position, no wrap


@pytest.mark.parametrize("arch", ["gpt", "swan", "swat", "nope", "swa"])
@pytest.mark.parametrize("window", [1, 5, 50])  # 50: a ring larger than the whole cache (41)
def test_cache_in_chunks_and_steps_equals_the_full_forward(arch, window):
    # A one-token prompt, odd-sized chunks (the ring of the S layers wraps inside and between
    # them), then one-token steps: each call's logits must be the full forward's at that position.
    model = make(arch, std=0.5, window=window, scale_base=10.0 if arch in ("swan", "nope") else None,
                 scale_start=9 if window == 5 else 0).double().eval()  # scale_start: the scaling begins mid-chunk
    seq = tokens(2, 41)
    full, _ = model(seq, seq)  # (2, 41, vocab)
    cache = KVCache(model.config, 2, 41, "cpu")
    ends = [1, 7, 8, 19, 30] + list(range(31, 42))  # chunks of 1, 6, 1, 11, 11, then steps
    start = 0
    for end in ends:
        logits, _ = model(seq[:, start:end], cache=cache)
        torch.testing.assert_close(logits[:, 0], full[:, end - 1], rtol=0, atol=1e-9)
        start = end
    assert cache.pos == 41


@pytest.mark.parametrize("arch", ["swan", "swat"])
def test_a_compiled_decoding_step_compiles_once_and_equals_the_eager_one(arch):
    # 30 steps after a prompt of 10, past the window (5) and block_size (24): the step reads only
    # device state, so what is compiled at the first step serves every later position
    model = make(arch, std=0.5, scale_base=10.0 if arch == "swan" else None).double().eval()
    torch._dynamo.reset()  # what other tests compiled counts towards dynamo's limit of recompilations
    graphs = []

    def counting_backend(gm, example_inputs):  # counts what dynamo traced, runs it through AOTAutograd as Inductor would
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    logits, compiled_at_first_step = {}, 0
    for name, compile_step in (("eager", False), ("compiled", counting_backend)):
        cache = KVCache(model.config, 2, 40, "cpu")
        last, _ = model(tokens(2, 10), cache=cache)
        step, token, seen = model.decoder(cache, compile_step=compile_step), last.argmax(-1), []
        for k in range(30):
            seen.append(step(token).clone())  # (2, 1, vocab)
            token = seen[-1].argmax(-1)
            compiled_at_first_step = compiled_at_first_step or len(graphs)
        logits[name] = torch.cat(seen, dim=1)  # (2, 30, vocab)
        assert cache.pos == 40 and cache.pos_t.item() == 40
    assert compiled_at_first_step >= 1 and len(graphs) == compiled_at_first_step  # no recompiling per position
    torch.testing.assert_close(logits["compiled"], logits["eager"], rtol=0, atol=1e-12)
    assert len(set(logits["eager"].argmax(-1).flatten().tolist())) > 3  # varied continuations
    with pytest.raises(ValueError, match="after the prompt's pass"):
        model.decoder(KVCache(model.config, 2, 40, "cpu"), compile_step=counting_backend)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_compiled_decoding_step_in_a_cuda_graph():
    # Inductor's kernels captured in the CUDA graph: the same logits as the eager step (float64:
    # the attention takes its PyTorch path, so only the fusion of the small operations differs)
    model = make("swan", std=0.5, window=17, n_embd=64).double().cuda().eval()
    torch._dynamo.reset()
    logits = []
    for cuda_graph, compile_step in ((False, False), (True, True)):
        cache = KVCache(model.config, 2, 70, "cuda")
        last, _ = model(tokens(2, 10).cuda(), cache=cache)
        step, token, seen = model.decoder(cache, cuda_graph=cuda_graph, compile_step=compile_step), last.argmax(-1), []
        for _ in range(60):
            seen.append(step(token).clone())
            token = seen[-1].argmax(-1)
        logits.append(torch.cat(seen, dim=1))  # (2, 60, vocab)
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-9)


def test_generate_zero_one_and_two_tokens():
    model = make("swan", std=0.5)
    prompt = tokens(2, 3)
    assert torch.equal(model.generate(prompt, 0), prompt)
    for n in (1, 2):
        assert torch.equal(model.generate(prompt, n, temperature=0), model.generate(prompt, n, temperature=0, use_cache=False))


def test_sampling_options():
    model = make("swan")
    torch.manual_seed(0)
    out = model.generate(tokens(3, 4), 6, temperature=0.8, top_k=1)
    assert torch.equal(out, model.generate(tokens(3, 4), 6, temperature=0))  # top_k=1 is greedy


@pytest.mark.parametrize("field,value,message", [
    ("layer_pattern", "NSX", "layer_pattern"),
    ("layer_pattern", "", "layer_pattern"),
    ("window", 0, "window"),
    ("n_embd", 30, "n_embd"),
    ("n_head", 8, "n_head"),  # 32 / 8 = 4 is even, so use 16 wide below
    ("attn", "relu", "attn"),
    ("alibi", "positive", "alibi"),
    ("scale_base", 1.0, "scale_base"),
    ("scale_start", -3, "scale_start=-3"),
    ("n_kv_head", 3, "n_kv_head=3"),  # 4 query heads do not split into groups of 3 kv heads
    ("n_kv_head", -1, "n_kv_head=-1"),
    ("mlp", "relu", "mlp='relu'"),
    ("mlp_hidden", -1, "mlp_hidden=-1"),
    ("norm_eps", 0.0, "norm_eps=0.0"),
])
def test_bad_configs_raise(field, value, message):
    kwargs = dict(SMALL, **{field: value})
    if field == "n_head":
        kwargs["n_embd"] = 24  # head dim 3: odd, so RoPE cannot pair it
    with pytest.raises(ValueError, match=message) as e:
        GPTConfig(**kwargs)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="arch"):
        GPTConfig.from_arch("llama")


LLAMA = dict(n_kv_head=2, mlp="swiglu", mlp_hidden=48, norm_eps=1e-5)  # SmolLM2's kind, small


def test_default_state_dict_is_unchanged():
    # The defaults must keep every old checkpoint loading strictly: the same keys and shapes.
    shapes = {name: tuple(t.shape) for name, t in make("swan").state_dict().items()}
    assert len(shapes) == 3 + 4 * 6  # wte, lm_head (tied), ln_f; six per block
    assert shapes["lm_head.weight"] == shapes["transformer.wte.weight"] == (97, 32)
    assert {name[len("transformer.h.0."):]: shape for name, shape in shapes.items() if name.startswith("transformer.h.0.")} == {
        "ln_1.weight": (32,), "attn.c_attn.weight": (96, 32), "attn.c_proj.weight": (32, 32),
        "ln_2.weight": (32,), "mlp.c_fc.weight": (128, 32), "mlp.c_proj.weight": (32, 128)}
    assert make("swan").transformer.ln_f.eps is None


def test_llama_style_config_forward_and_backward():
    model = make("gpt", **LLAMA).train()
    block = model.transformer.h[0]
    assert block.attn.c_attn.weight.shape == ((4 + 2 * 2) * 8, 32)  # q heads, then k, then v heads
    assert block.mlp.c_fc.weight.shape == (2 * 48, 32) and block.mlp.c_proj.weight.shape == (32, 48)
    assert block.ln_1.eps == block.ln_2.eps == model.transformer.ln_f.eps == 1e-5
    idx = tokens(2, 67)
    _, loss = model(idx, tokens(2, 67, seed=2))
    loss.backward()
    assert abs(loss.item() - math.log(97)) < 0.5
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # SwiGLU: the first half of c_fc's rows is the gate, the second the up projection
    x = torch.randn(3, 32)
    gate, up = block.mlp.c_fc.weight[:48], block.mlp.c_fc.weight[48:]
    expect = (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ block.mlp.c_proj.weight.T
    assert torch.allclose(block.mlp(x), expect, atol=1e-6)


@pytest.mark.parametrize("arch", ["swan", "swat"])
def test_grouped_query_model_equals_repeated_kv_heads(arch):
    # A GQA model is the multi-head model whose k and v heads are copies within each group: query
    # head h reads kv head h // 2 (c_attn rows: q heads, then k heads, then v heads).
    gqa, mha = make(arch, n_kv_head=2), make(arch, seed=1)
    state = gqa.state_dict()
    for layer in range(4):
        name = f"transformer.h.{layer}.attn.c_attn.weight"
        q, k, v = state[name].view(8, 8, 32).split([4, 2, 2])  # (heads, head dim, n_embd)
        state[name] = torch.cat([q, k.repeat_interleave(2, 0), v.repeat_interleave(2, 0)]).view(96, 32)
    mha.load_state_dict(state, strict=True)
    idx = tokens(2, 67)
    assert torch.allclose(gqa(idx, idx)[0], mha(idx, idx)[0], atol=1e-5)


@pytest.mark.parametrize("arch", ["swan", "swat"])
def test_grouped_query_cached_generation_equals_recomputation(arch):
    model = make(arch, std=0.5, scale_base=10.0 if arch == "swan" else None, **LLAMA).double()
    prompt = tokens(2, 10)
    cached = model.generate(prompt, 40, temperature=0, use_cache=True)
    assert len(set(cached[:, 10:].flatten().tolist())) > 5
    assert torch.equal(cached, model.generate(prompt, 40, temperature=0, use_cache=False))


def test_grouped_query_cache_is_smaller():
    sizes = {}
    for n_kv_head in (0, 2, 1):  # 4 query heads
        model = make("swan", n_kv_head=n_kv_head)
        cache = KVCache(model.config, 1, 30, "cpu")
        model(tokens(1, 30), cache=cache)
        assert cache.k[0].shape == (1, n_kv_head or 4, 30, 8)
        sizes[n_kv_head] = cache.nbytes()
    assert sizes[0] == 2 * (30 + 3 * 5) * 4 * 8 * 4  # k and v: slots x heads x head dim x fp32
    assert sizes == {0: sizes[0], 2: sizes[0] // 2, 1: sizes[0] // 4}


def test_optimizer_groups():
    model = make("swan")
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_params()


def test_archs_cover_the_five_presets():
    assert set(ARCHS) == {"gpt", "nope", "swa", "swan", "swat"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("arch", ["swan", "swat"])
def test_cached_generation_on_the_gpu(arch):
    # On CUDA the S layers run the Triton kernel: the decode form (one query) and the full form
    # must agree with each other and with the CPU model.
    model = make(arch, std=0.5, window=17, n_embd=64)  # head dim 16: the smallest the kernel takes
    prompt = tokens(2, 10)
    on_cpu = model.generate(prompt, 60, temperature=0)
    model = model.cuda()
    cached = model.generate(prompt.cuda(), 60, temperature=0, use_cache=True)  # decoding in a CUDA graph
    eager = model.generate(prompt.cuda(), 60, temperature=0, use_cache=True, cuda_graph=False)
    recomputed = model.generate(prompt.cuda(), 60, temperature=0, use_cache=False)
    assert torch.equal(cached, recomputed) and torch.equal(eager, recomputed) and torch.equal(cached.cpu(), on_cpu)
    with torch.autocast("cuda", dtype=torch.bfloat16):  # as train.py and sample.py generate
        cached = model.generate(prompt.cuda(), 60, temperature=0)
        eager = model.generate(prompt.cuda(), 60, temperature=0, cuda_graph=False)
    assert torch.equal(cached, eager)  # the same kernels, replayed or launched
