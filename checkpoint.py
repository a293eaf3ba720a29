"""
Checkpoints: one file per run, `OUT_DIR/ckpt.pt`, written whole or not at all.

A checkpoint is a dict: model (state dict), model_config (GPTConfig's fields), optimizer,
train_config (TrainConfig's fields), iter, val_loss, and data (data_dir, seed, next_iter, the
global batch and the tokenizer the model was trained with: name, vocab_size and tokenizer_sha256,
which older checkpoints lack). Every script reads runs through load_model, which names the
problem in one line when a path is missing, corrupt, foreign or does not fit the model.
"""

import os
import sys
from dataclasses import asdict

import torch

from data.prepare import DataError, atomic_write, load_meta
from model import GPT, GPTConfig


def save_checkpoint(path, **state):
    atomic_write(path, lambda f: torch.save(state, f))  # a crash leaves the previous checkpoint whole


def checkpoint_path(where):
    return os.path.join(where, "ckpt.pt") if os.path.isdir(where) else where


def load_checkpoint(where, device="cpu"):
    """(checkpoint dict, GPTConfig) from a run directory or a ckpt.pt, or a one-line SystemExit."""
    path = checkpoint_path(where)
    if not os.path.exists(path):
        raise SystemExit(f"error: no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises many kinds for a truncated or foreign file
        raise SystemExit(f"error: {path} is corrupt or not a checkpoint written by train.py ({type(e).__name__})")
    missing = [k for k in ("model", "model_config", "iter", "data") if k not in ckpt] if isinstance(ckpt, dict) else ["all"]
    if missing:
        raise SystemExit(f"error: {path} is not a checkpoint written by train.py (it lacks {', '.join(missing)})")
    try:
        config = GPTConfig(**ckpt["model_config"])
    except (TypeError, ValueError) as e:
        raise SystemExit(f"error: {path} holds a model config this version cannot build: {e}")
    return ckpt, config


def load_model(where, device="cpu", **config_overrides):
    """A GPT from a checkpoint; overrides (say arch fields) keep the sizes and change the rest."""
    ckpt, config = load_checkpoint(where, device)
    run = ckpt.get("train_config", {})
    if run.get("rope_fade") and ckpt["iter"] < run["rope_fade"] * run["max_iters"]:
        print(f"note: {checkpoint_path(where)} was saved at iteration {ckpt['iter']} of a --rope_fade conversion, while its "
              f"N layers still had part of their RoPE; it is loaded with none", file=sys.stderr)
    return model_from(ckpt, config, where, device, **config_overrides), ckpt


def model_from(ckpt, config, where, device="cpu", **config_overrides):
    """The GPT of a loaded checkpoint (ckpt, config from load_checkpoint of `where`), with overrides:
    one file read can build the model more than once."""
    try:
        config = GPTConfig(**{**asdict(config), **config_overrides})
        model = GPT(config)
        model.load_state_dict(ckpt["model"], strict=True)
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"error: checkpoint {checkpoint_path(where)} does not fit this model: {str(e).splitlines()[0][:300]}")
    return model.to(device)


def tokenizer_id(meta):
    """(name, vocab_size, sha256 or None) of a prepared dataset: what makes the token ids of two
    datasets mean the same thing."""
    return meta["tokenizer"], meta["vocab_size"], meta.get("tokenizer_sha256")


def same_tokenizer(a, b):
    """Two tokenizer_ids that tokenize alike; a missing hash (gpt2, or an older run whose dataset
    is gone) is taken on trust."""
    return a[:2] == b[:2] and (None in (a[2], b[2]) or a[2] == b[2])


def trained_tokenizer(ckpt):
    """The tokenizer_id a checkpoint was trained with. Older checkpoints lack the hash: then it is
    their dataset's, if that is still where it was."""
    data = ckpt["data"]
    sha = data.get("tokenizer_sha256")
    if sha is None and data["tokenizer"] == "bpe":
        try:
            sha = load_meta(data["data_dir"], tokens=False).get("tokenizer_sha256")
        except DataError:
            pass
    return data["tokenizer"], data["vocab_size"], sha


def check_tokenizer(ckpt, meta, where, data_dir):
    """One line if the data in data_dir (its meta) is not tokenized as the checkpoint's was: token
    ids of two tokenizers of the same size mean different things, and nothing else would notice."""
    trained, data = trained_tokenizer(ckpt), tokenizer_id(meta)
    if not same_tokenizer(trained, data):
        def name(tok):
            return f"{tok[0]} {tok[1]}" + (f", sha256 {tok[2][:12]}" if tok[2] else "")
        raise SystemExit(f"error: {checkpoint_path(where)} was trained with another tokenizer ({name(trained)}) than "
                         f"the one of {data_dir} ({name(data)}); use data prepared with its tokenizer "
                         f"(python data/prepare.py --tokenizer_from=...)")
