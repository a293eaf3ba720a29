"""attention_decode_triton.py, the split-K decoding kernel, against the dense float64 reference of
tests/reference.py, built from the cache itself: its seen slots gathered in position order.

Without a GPU the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET) in
float32, with tiles of 16 slots, so that small caches cross many tile and split edges."""

import pytest
import torch

from attention import attention_decode
import attention_decode_triton as decode_module
from attention_decode_triton import MAX_SPLITS, attention_decode_step_triton, attention_decode_triton, decode_splits
from reference import reference, rel_err

DEV = "cuda" if torch.cuda.is_available() else "cpu"
# masked-out sigmoid logits may overflow exp2 to inf (giving weight 0, as meant); numpy says so
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in exp2:RuntimeWarning")
SLOPES = torch.tensor([-0.5, 0.25, -0.125, 0.5, -0.25, 0.125])  # balanced ALiBi, one per query head


def make_cache(B, H, Hkv, D, slots, pos, ring, seed=0):
    """q at position pos and a cache as model.KVCache lays it out: `slots` global slots (slot p holds
    position p; those past pos hold junk, not yet seen) or a ring of `slots` (position p in slot
    p % slots; slots not yet written marked -1). Junk is large, so a leak would show."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, 1, D, generator=g)
    k, v = (100 * torch.randn(B, Hkv, slots, D, generator=g) for _ in range(2))
    if ring:
        key_pos = torch.full((slots,), -1)
        for p in range(max(0, pos - slots + 1), pos + 1):
            key_pos[p % slots] = p
    else:
        key_pos = torch.arange(slots)
    seen = (key_pos >= 0) & (key_pos <= pos)
    k[:, :, seen] /= 100
    v[:, :, seen] /= 100
    return [t.to(DEV) for t in (q, k, v, key_pos, torch.tensor([pos]))]


def reference_from_cache(q, k, v, key_pos, pos, kind, slopes):
    """The seen slots in position order, each kv head repeated for its query heads: then the
    query is the last of its keys, as reference() wants, and i - j its distance to each."""
    seen = ((key_pos >= 0) & (key_pos <= pos)).nonzero().flatten()
    order = seen[key_pos[seen].argsort()]
    assert torch.equal(key_pos[order], torch.arange(pos - len(order) + 1, pos + 1, device=key_pos.device))
    G = q.shape[1] // k.shape[1]
    k, v = (t[:, :, order].repeat_interleave(G, dim=1) for t in (k, v))
    return reference(q, k, v, None, kind, slopes)


CASES = [  # slots, pos, ring, D, kind, alibi, split_slots (64: the default; 512: one split up to 512 slots)
    (67, 40, False, 16, "softmax", False, 512),  # global, empty tail of 26 slots, one split
    (67, 40, False, 24, "sigmoid", True, 512),  # a head dim that is not a power of two
    (67, 40, False, 16, "softmax", True, 16),  # 5 splits, the last two entirely unseen
    (67, 66, False, 8, "sigmoid", False, 20),  # every slot seen; splits of 32 (20 rounded up to tiles)
    (5, 66, True, 16, "softmax", True, 512),  # a ring of 5 after wrap-around: 62..66 out of order
    (5, 2, True, 16, "sigmoid", True, 512),  # a ring not yet full: slots 3 and 4 empty
    (37, 100, True, 32, "softmax", False, 16),  # a ring split in three, wrapped mid-split
    (1000, 900, False, 16, "softmax", True, 512),  # 2 splits of 512 and 488 slots
    (1000, 900, False, 16, "sigmoid", True, 512),
    (1000, 900, False, 16, "softmax", True, 64),  # the default: 16 splits of 64, the last 40 slots
    (512, 700, True, 64, "softmax", False, 64),  # a full window ring of 512, as a model's S layer: 8 splits
]
# ALiBi over 900 positions makes logits of up to ~450 (~650 in base 2), whose float32 rounding
# (~4e-5 absolute) is a relative error of the softmax weights: measured 9.2e-6 here, and 4.5e-6
# for the torch path, whose natural-base logits are 1.44x smaller. Every other case: 1e-5.
TOL = {(1000, "softmax", True): 2e-5}
MEASURED = {}  # the errors, for the report printed by the last test


@pytest.mark.parametrize("slots,pos,ring,D,kind,alibi,split_slots", CASES)
def test_matches_float64_reference(slots, pos, ring, D, kind, alibi, split_slots):
    # B=3 sequences, 6 query heads on 2 kv heads
    q, k, v, key_pos, query_pos = make_cache(3, 6, 2, D, slots, pos, ring, seed=slots + pos)
    slopes = SLOPES.to(DEV) if alibi else None
    out = attention_decode_triton(q, k, v, key_pos, query_pos, kind, slopes, split_slots=split_slots)
    ref = reference_from_cache(q, k, v, key_pos, pos, kind, slopes)
    assert out.shape == (3, 6, 1, D) and out.dtype == q.dtype
    err = rel_err(out, ref)
    MEASURED[(slots, pos, ring, D, kind, alibi, split_slots)] = err
    assert err < TOL.get((slots, kind, alibi), 1e-5)


def test_split_count_is_a_function_of_the_shape():
    assert decode_splits(5, block_s=64) == (1, 64)  # a small ring: one tile
    assert decode_splits(512, block_s=64) == (8, 64)  # a window ring of W = 512: 8 programs side by side
    assert decode_splits(1000, block_s=64) == (16, 64)
    assert decode_splits(1000, 512, block_s=64) == (2, 512)
    # 32k + 128 slots: capped at 64 splits of 514, rounded up to whole tiles: 58 of 576 (the last 8 of 512)
    assert decode_splits(32768 + 128, block_s=64) == (58, 576)
    assert decode_splits(67, 16, block_s=16) == (5, 16)
    for S in (1, 17, 511, 513, 4099, 10**6):
        n, split_len = decode_splits(S, block_s=64)
        assert split_len % 64 == 0 and (n - 1) * split_len < S <= n * split_len and 1 <= n <= MAX_SPLITS


@pytest.mark.parametrize("kind,alibi", [("softmax", False), ("softmax", True), ("sigmoid", True)])
def test_backend_switch_equals_the_torch_path(kind, alibi):
    q, k, v, key_pos, query_pos = make_cache(3, 6, 2, 16, 37, 100, ring=True, seed=7)
    slopes = SLOPES.to(DEV) if alibi else None
    outs = [attention_decode(q, k, v, key_pos, query_pos, kind=kind, alibi_slopes=slopes, scale=0.3, backend=b)
            for b in ("torch", "triton")]
    MEASURED[("torch vs triton", kind, alibi)] = rel_err(outs[1], outs[0])
    assert rel_err(outs[1], outs[0]) < 1e-5


def test_bad_arguments():
    q, k, v, key_pos, query_pos = make_cache(1, 2, 2, 16, 8, 3, ring=False)
    with pytest.raises(ValueError, match=r"^backend must be 'torch' or 'triton', got 'cuda'$"):
        attention_decode(q, k, v, key_pos, query_pos, backend="cuda")
    with pytest.raises(ValueError, match="kind"):
        attention_decode_triton(q, k, v, key_pos, query_pos, kind="relu")


def tiny_swan(n_embd):
    """A swan with grouped-query attention (4 query heads on 2 kv heads), window 5, large weights:
    attention, not the tied embedding, then picks the next token."""
    from model import GPT, GPTConfig
    torch.manual_seed(0)
    config = GPTConfig.from_arch("swan", vocab_size=97, block_size=16, n_layer=4, n_head=4, n_kv_head=2,
                                 n_embd=n_embd, window=5, scale_base=10.0)
    model = GPT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5)
    return model, torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(1))


def test_greedy_generation_with_the_triton_decode_equals_recomputation():
    # 20 new tokens after 10, past the window (5) and the training length (16), every step through
    # the kernel in the N layers (a global cache of 30 slots) and the S layers (a ring of 5); head dim 8
    model, prompt = tiny_swan(n_embd=32)
    model, prompt = model.to(DEV), prompt.to(DEV)  # the kernel needs CUDA tensors unless interpreted
    assert model.set_decode_backend("triton") is model
    assert {block.attn.decode_backend for block in model.transformer.h} == {"triton"}
    cached = model.generate(prompt, 20, temperature=0, use_cache=True, cuda_graph=False)
    assert len(set(cached[:, 10:].flatten().tolist())) > 5  # varied continuations
    assert torch.equal(cached, model.generate(prompt, 20, temperature=0, use_cache=False))
    with pytest.raises(ValueError, match="decode backend"):
        model.set_decode_backend("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_graph_decoding_with_the_triton_kernel():
    # the step captured in a CUDA graph must read each replay's position from pos_t: replayed,
    # eager and recomputed generation agree, in float32 and under bf16 autocast (head dim 16)
    model, prompt = tiny_swan(n_embd=64)
    model, prompt = model.cuda().set_decode_backend("triton"), prompt.cuda()
    cached = model.generate(prompt, 60, temperature=0)
    assert torch.equal(cached, model.generate(prompt, 60, temperature=0, use_cache=False))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert torch.equal(model.generate(prompt, 60, temperature=0),
                           model.generate(prompt, 60, temperature=0, cuda_graph=False))


def test_report_the_errors_measured():
    # not a check: the largest errors of the tests above, for `pytest -s` (all in one process)
    if MEASURED:
        print("\nlargest relative error against float64:", f"{max(v for k, v in MEASURED.items() if len(k) == 7):.2e}")


STEP_CASES = [  # slots, ring, rope, kind, alibi, pos, split_slots (16: splits of 16 slots)
    (5, True, True, "softmax", False, 23, 64),  # a window layer's ring of 5, wrapped: SWAN's S layers
    (5, True, True, "sigmoid", True, 3, 64),  # a ring not yet full, sigmoid and ALiBi: SWAT's layers
    (37, True, True, "softmax", False, 100, 16),  # a ring in 3 splits, the new slot (26) in the second
    (37, True, True, "sigmoid", True, 100, 16),  # the same, sigmoid and ALiBi: the merge adds the splits' sums
    (40, False, True, "softmax", False, 23, 16),  # a global cache in 3 splits, slot 23 in the second
    (40, False, False, "softmax", True, 39, 64),  # NoPE, ALiBi, the cache's last slot
]


def step_inputs(B, H, Hkv, D, S, pos, dtype=torch.float32):
    g = torch.Generator().manual_seed(pos)
    qkv = torch.randn(B, 1, (H + 2 * Hkv) * D, generator=g).to(dtype)
    k_cache, v_cache = (torch.randn(B, Hkv, S, D, generator=g).to(dtype) for _ in range(2))
    return qkv, k_cache, v_cache


def plain_step(qkv, k_cache, v_cache, H, pos, ring, tables, kind, slopes, backend):
    """What model.Attention does around attention_decode: RoPE on the step's q and k, k and v
    written to their slot (into the caches given), then attention_decode with KVCache's positions."""
    from model import apply_rope
    B, Hkv, S, D = k_cache.shape
    q, k, v = qkv.view(B, 1, H + 2 * Hkv, D).transpose(1, 2).split([H, Hkv, Hkv], dim=1)
    if tables is not None:
        cos, sin = (t[pos:pos + 1].to(qkv.device) for t in tables)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    slot = pos % S if ring else pos
    k_cache[:, :, slot], v_cache[:, :, slot] = k[:, :, 0], v[:, :, 0]
    slots = torch.arange(S, device=qkv.device)
    key_pos = pos - (pos - slots) % S if ring else slots
    return attention_decode(q, k_cache, v_cache, key_pos, torch.tensor([pos], device=qkv.device), kind=kind,
                            alibi_slopes=slopes, backend=backend)


@pytest.mark.parametrize("S,ring,rope,kind,alibi,pos,split_slots", STEP_CASES)
def test_the_step_kernel_equals_rope_the_cache_write_and_the_decode(S, ring, rope, kind, alibi, pos, split_slots):
    # attention_decode_step_triton against the plain path in float32: the same output, the new key
    # (rotated) and value in their slot, nothing else written. 4 query heads on 2 kv heads, head dim 16.
    from model import rope_tables
    B, H, Hkv, D = 2, 4, 2, 16
    qkv, k_cache, v_cache = step_inputs(B, H, Hkv, D, S, pos)
    tables = rope_tables(128, D, 10000.0, "cpu") if rope else None
    slopes = SLOPES[:H] if alibi else None
    k_want, v_want = k_cache.clone(), v_cache.clone()
    want = plain_step(qkv, k_want, v_want, H, pos, ring, tables, kind, slopes, backend="torch")
    k_cache, v_cache = k_cache.to(DEV), v_cache.to(DEV)
    got = attention_decode_step_triton(qkv.to(DEV), H, k_cache, v_cache, torch.tensor([pos], device=DEV),
                                       None if tables is None else tuple(t.to(DEV) for t in tables), ring=ring,
                                       kind=kind, alibi_slopes=None if slopes is None else slopes.to(DEV),
                                       split_slots=split_slots)
    assert got.shape == (B, H, 1, D)
    assert rel_err(got.cpu().double(), want.double()) < 1e-5
    torch.testing.assert_close(k_cache.cpu(), k_want, rtol=1e-6, atol=1e-6)  # the new key, rotated, in its slot
    assert torch.equal(v_cache.cpu(), v_want)  # and nothing else written
    with pytest.raises(ValueError, match=r"^qkv's last dim 128 is not \(n_head \+ 2 \* 2 kv heads\) x head dim 16$"):
        attention_decode_step_triton(qkv.to(DEV), H + 1, k_cache, v_cache, torch.tensor([pos], device=DEV))


def test_the_last_split_of_a_ring_merges_and_leaves_the_counters_at_zero():
    # on a ring the step kernel's last split to finish merges (no second kernel); its head's counter
    # must be 0 again for the next launch (a CUDA graph replays on the same counters). The
    # interpreter runs programs one after another: the ordering of the partials' stores before the
    # count (barrier, atomic) is exercised only on a GPU, by the same tests run there
    from model import rope_tables
    B, H, Hkv, D, S, pos = 2, 4, 2, 16, 37, 100  # 3 splits of 16 slots
    qkv, k_cache, v_cache = (t.to(DEV) for t in step_inputs(B, H, Hkv, D, S, pos))
    tables = tuple(t.to(DEV) for t in rope_tables(128, D, 10000.0, "cpu"))

    def step(qkv):
        return attention_decode_step_triton(qkv, H, k_cache, v_cache, torch.tensor([pos], device=DEV), tables,
                                            ring=True, split_slots=16)

    first = step(qkv)
    counters = decode_module._ARRIVALS[(qkv.device, B * H)]
    assert counters.shape == (8,) and counters.abs().sum().item() == 0
    assert torch.equal(first, step(qkv))
    # a counter not at zero (as after a launch stopped halfway): head 5's splits never find
    # themselves the last, and its output is never written
    qkv = qkv + 1.0  # new numbers: no leftover of an earlier launch holds them
    right = step(qkv)
    counters[5] = 100
    wrong = step(qkv)
    counters.zero_()
    assert not torch.allclose(right.view(8, -1)[5], wrong.view(8, -1)[5])
    assert torch.equal(right.view(8, -1)[:5], wrong.view(8, -1)[:5])


def test_the_step_kernel_rounds_as_the_plain_path_in_half_precision():
    # fp16 (the interpreter's bf16 is not faithful): the rotated query and key rounded to the
    # cache's dtype where the plain path rounds them, so output and cache equal its to the bit
    from model import rope_tables
    B, H, Hkv, D, S, pos = 2, 4, 2, 16, 37, 100
    qkv, k_cache, v_cache = (t.to(DEV) for t in step_inputs(B, H, Hkv, D, S, pos, torch.float16))
    tables = tuple(t.to(DEV) for t in rope_tables(128, D, 10000.0, "cpu"))
    k_want, v_want = k_cache.clone(), v_cache.clone()
    want = plain_step(qkv, k_want, v_want, H, pos, True, tables, "softmax", None, backend="triton")
    got = attention_decode_step_triton(qkv, H, k_cache, v_cache, torch.tensor([pos], device=DEV), tables, ring=True)
    assert got.dtype == torch.float16
    assert torch.equal(got, want) and torch.equal(k_cache, k_want) and torch.equal(v_cache, v_want)
