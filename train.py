"""
Train a SWAN-GPT (or its baselines) on one CPU, one GPU, or several GPUs.

    python train.py                                          # the CPU default: small swan, Shakespeare
    python train.py config/gutenberg.py --arch=gpt           # a preset, then --key=value overrides
    python train.py --init_from=resume --out_dir=out         # continue a stopped run
    python train.py --init_from=out-gpt --arch=swan          # SWAN conversion of a GPT checkpoint
    torchrun --nproc_per_node=2 train.py config/gutenberg.py # DistributedDataParallel

Every field of TrainConfig below and of model.GPTConfig is a setting. A preset in config/ is a
Python file of plain `key = value` lines (read as literals, never executed).
"""

import ast
import json
import math
import os
import signal
import sys
import time
import types
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from tqdm import tqdm

from data.prepare import DataError, atomic_write, load_meta, load_split, load_tokenizer, prepare
from model import ARCHS, GPT, GPTConfig

DEFAULT_DATA = "data/shakespeare"  # prepared on first use; any other data_dir must exist


@dataclass
class TrainConfig:
    data_dir: str = DEFAULT_DATA
    out_dir: str = "out"
    arch: str = "swan"  # gpt | nope | swa | swan | swat: sets layer_pattern, attn, alibi
    init_from: str = "scratch"  # scratch | resume | PATH of another run (its dir or ckpt.pt)
    batch_size: int = 16  # sequences per micro-batch (per GPU)
    grad_accum: int = 1  # micro-batches per optimizer step
    max_iters: int = 400
    warmup_iters: int = 40
    learning_rate: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = off
    eval_interval: int = 100  # also writes the checkpoint
    eval_iters: int = 4
    log_interval: int = 10
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False
    seed: int = 1337
    sample_tokens: int = 256  # a sample printed at the end of training (0 = none)


# -----------------------------------------------------------------------------
# settings: dataclass fields, overridden by a preset file and by --key=value


def parse_value(key, value, typ):
    """Convert value (a string from the command line, or a literal from a preset) to typ."""
    optional = isinstance(typ, types.UnionType) and type(None) in typ.__args__
    if optional:
        if value is None or str(value).lower() in ("none", "off"):
            return None
        typ = next(t for t in typ.__args__ if t is not type(None))
    if typ is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false"):
            return value if isinstance(value, bool) else str(value).lower() == "true"
    elif typ is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif typ is int and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    elif typ is str and isinstance(value, str):
        return value
    name = typ.__name__ + (" or None" if optional else "")
    raise SystemExit(f"error: --{key}={value!r} is not a valid {name}")


def read_preset(path):
    """A preset is `key = literal` lines; anything else is refused rather than executed."""
    try:
        tree = ast.parse(open(path).read(), filename=path)
    except (OSError, SyntaxError) as e:
        raise SystemExit(f"error: cannot read preset {path}: {e}")
    settings = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise SystemExit(f"error: {path}:{node.lineno}: a preset holds only `key = value` lines")
        try:
            settings[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise SystemExit(f"error: {path}:{node.lineno}: the value must be a literal (number, string, True/False/None)")
    return settings


def parse_settings(argv, *classes):
    """{key: typed value} from preset files and --key=value arguments, checked against the fields."""
    known = {f.name: f.type for cls in classes for f in fields(cls)}
    raw = {}
    for arg in argv:
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq and known.get(key) is bool:
                value = "true"  # a bare --flag switches a yes/no setting on
            elif not eq:
                raise SystemExit(f"error: {arg}: write settings as --key=value")
            raw[key] = value
        else:
            raw.update(read_preset(arg))
    for key in raw:
        if key not in known:
            raise SystemExit(f"error: unknown setting {key!r}; valid settings: {', '.join(known)}")
    return {key: parse_value(key, value, known[key]) for key, value in raw.items()}


def build_configs(argv):
    settings = parse_settings(argv, TrainConfig, GPTConfig)
    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in settings.items() if k in names})
    for key in ("batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval"):
        if getattr(cfg, key) < 1:
            raise SystemExit(f"error: --{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.arch not in ARCHS:
        raise SystemExit(f"error: --arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
    model_settings = {k: v for k, v in settings.items() if k not in names}
    return cfg, model_settings


def pick_device(name):
    """'auto' | 'cpu' | 'cuda' (the --device setting of every script) to a device, or SystemExit."""
    if name not in ("auto", "cpu", "cuda"):
        raise SystemExit(f"error: --device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device=cuda but no CUDA GPU is available")
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def autocast_for(device):
    # bf16 matmuls on the GPU (weights stay fp32); plain fp32 on the CPU
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()


# -----------------------------------------------------------------------------
# checkpoints: written whole or not at all


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
    try:
        config = GPTConfig(**{**asdict(config), **config_overrides})
        model = GPT(config)
        model.load_state_dict(ckpt["model"], strict=True)
    except (ValueError, RuntimeError) as e:
        raise SystemExit(f"error: checkpoint {checkpoint_path(where)} does not fit this model: {str(e).splitlines()[0][:300]}")
    return model.to(device), ckpt


# -----------------------------------------------------------------------------
# data: the batch of iteration `it` is a function of (seed, it, rank) alone, so a resumed run
# sees exactly the batches the uninterrupted one would have


def get_batch(tokens, it, cfg, block_size, rank, device, stream):
    rng = np.random.default_rng([cfg.seed, stream, it, rank])
    starts = rng.integers(0, len(tokens) - block_size - 1, size=cfg.batch_size * cfg.grad_accum)
    chunk = np.stack([tokens[s:s + block_size + 1] for s in starts]).astype(np.int64)
    chunk = torch.from_numpy(chunk).to(device, non_blocking=True)
    return chunk[:, :-1], chunk[:, 1:]  # (B * grad_accum, T) inputs and targets


def get_lr(it, cfg):
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / cfg.warmup_iters
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    min_lr = cfg.learning_rate * cfg.min_lr_ratio
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.learning_rate - min_lr)


@torch.no_grad()
def estimate_val_loss(model, val_tokens, cfg, block_size, device, autocast):
    model.eval()
    losses = []
    for k in range(cfg.eval_iters):  # the same windows at every evaluation: curves are comparable
        x, y = get_batch(val_tokens, k, cfg, block_size, 0, device, stream=1)
        for xb, yb in zip(x.split(cfg.batch_size), y.split(cfg.batch_size)):
            with autocast:
                losses.append(model(xb, yb)[1].item())
    model.train()
    return float(np.mean(losses))


def main(argv):
    cfg, model_settings = build_configs(argv)
    device, rank, world = pick_device(cfg.device), 0, 1
    ddp = "RANK" in os.environ  # launched by torchrun: one process per GPU
    if ddp:
        torch.distributed.init_process_group("nccl")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    master = rank == 0
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    torch.manual_seed(cfg.seed)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    autocast = autocast_for(device)

    # data, prepared on first use when it is the default
    try:
        if not os.path.exists(os.path.join(cfg.data_dir, "meta.json")) and cfg.data_dir == DEFAULT_DATA:
            if master:
                print(f"{DEFAULT_DATA} is missing: preparing it (python data/prepare.py)")
                prepare("shakespeare", out_dir=DEFAULT_DATA)
            if ddp:
                torch.distributed.barrier()
        meta = load_meta(cfg.data_dir)
        train_tokens, _ = load_split(cfg.data_dir, "train")
        val_tokens, _ = load_split(cfg.data_dir, "val")
    except DataError as e:
        raise SystemExit(f"error: {e}")

    # model: from scratch, resumed, or another run's weights in this architecture
    arch_settings = {**ARCHS[cfg.arch], **model_settings}
    start_iter, val_loss, ckpt_path = 0, None, os.path.join(cfg.out_dir, "ckpt.pt")
    if cfg.init_from == "scratch":
        try:
            model_config = GPTConfig(**{"vocab_size": meta["vocab_size"], **arch_settings})
        except ValueError as e:
            raise SystemExit(f"error: {e}")
        model = GPT(model_config).to(device)
        ckpt = None
    else:
        resume = cfg.init_from == "resume"
        source = cfg.out_dir if resume else cfg.init_from
        # resume continues the saved architecture; PATH keeps only the sizes of the source model
        overrides = {} if resume else {k: v for k, v in arch_settings.items() if k not in ("vocab_size", "n_layer", "n_head", "n_embd")}
        model, ckpt = load_model(source, device, **overrides)
        model_config = model.config
        start_iter = ckpt["iter"] if resume else 0
        val_loss = ckpt.get("val_loss") if resume else None
    if model_config.vocab_size < meta["vocab_size"]:
        raise SystemExit(f"error: the model's vocab_size {model_config.vocab_size} is smaller than the data's {meta['vocab_size']}")
    if min(len(train_tokens), len(val_tokens)) <= model_config.block_size + 1:
        raise SystemExit(f"error: block_size={model_config.block_size} does not fit in the data ({len(val_tokens)} val tokens)")
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), device_type)
    if cfg.init_from == "resume":
        optimizer.load_state_dict(ckpt["optimizer"])
    ckpt = None  # free memory
    model.rope_for(model_config.block_size, device)  # built before compiling: no growth inside the graph
    raw_model = model
    if cfg.compile:
        model = torch.compile(model)
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()])

    if master:
        os.makedirs(cfg.out_dir, exist_ok=True)
        print(f"{cfg.arch} ({model_config.layer_pattern}, window {model_config.window}, {model_config.attn}): "
              f"{raw_model.num_params() / 1e6:.2f}M parameters, {device}{f' x{world}' if ddp else ''}, "
              f"data {cfg.data_dir} ({len(train_tokens):,} train tokens)")
        log_path = os.path.join(cfg.out_dir, "log.jsonl")
        kept = []  # on resume, drop log lines past the checkpoint: the curve continues from there
        if start_iter > 0 and os.path.exists(log_path):
            kept = [line for line in open(log_path) if json.loads(line)["iter"] <= start_iter]
        with open(log_path, "w") as f:
            f.writelines(kept)
        log_file = open(log_path, "a")

    def log(**row):
        log_file.write(json.dumps(row) + "\n")
        log_file.flush()

    def checkpoint(it):
        if master:
            save_checkpoint(ckpt_path, model=raw_model.state_dict(), optimizer=optimizer.state_dict(),
                            model_config=asdict(model_config), train_config=asdict(cfg), iter=it, val_loss=val_loss,
                            data={"data_dir": os.path.abspath(cfg.data_dir), "seed": cfg.seed, "next_iter": it,
                                  "tokenizer": meta["tokenizer"], "vocab_size": meta["vocab_size"]})

    # Ctrl-C asks to stop after the current step, which then saves; a second one stops at once
    stop = []

    def on_sigint(signum, frame):
        if stop:
            raise KeyboardInterrupt
        stop.append(signum)
        tqdm.write("stopping after this step (Ctrl-C again to stop at once, without saving)")

    signal.signal(signal.SIGINT, on_sigint)

    tokens_per_iter = cfg.batch_size * cfg.grad_accum * model_config.block_size * world
    bar = tqdm(total=cfg.max_iters, initial=start_iter, disable=not master, dynamic_ncols=True, unit="it",
               mininterval=1 if sys.stderr.isatty() else 30)  # a log file gets a line every 30 s
    step_time = 0.0
    for it in range(start_iter, cfg.max_iters + 1):
        # evaluate every eval_interval (a resumed run did so before its checkpoint was saved)
        if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and not (it == start_iter > 0):
            val_loss = estimate_val_loss(model, val_tokens, cfg, model_config.block_size, device, autocast)
            if master:
                log(iter=it, val_loss=val_loss)
            if it > start_iter:
                checkpoint(it)
        if it == cfg.max_iters or stop:
            break
        t0 = time.time()
        lr = get_lr(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(train_tokens, it, cfg, model_config.block_size, rank, device, stream=0)
        loss_sum = 0.0
        for micro, (xb, yb) in enumerate(zip(x.split(cfg.batch_size), y.split(cfg.batch_size))):
            sync = not ddp or micro == cfg.grad_accum - 1  # all-reduce gradients once per step
            with (nullcontext() if sync else model.no_sync()), autocast:
                loss = model(xb, yb)[1] / cfg.grad_accum
            loss.backward()
            loss_sum += loss.detach()
        loss_value = loss_sum.item()
        if not math.isfinite(loss_value):  # the weights that gave it are never saved
            bar.close()
            saved = f"the last good checkpoint is {ckpt_path}" if os.path.exists(ckpt_path) else "no checkpoint was written"
            raise SystemExit(f"error: loss became {loss_value} at iter {it}; stopped, {saved}. Try a lower --learning_rate")
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_time += time.time() - t0  # evaluation and checkpoints excluded from the rate
        bar.update(1)
        if (it + 1) % cfg.log_interval == 0:
            tokens_per_s, step_time = tokens_per_iter * cfg.log_interval / step_time, 0.0
            bar.set_postfix(loss=f"{loss_value:.3f}", val=f"{val_loss or float('nan'):.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            if master:
                log(iter=it + 1, loss=loss_value, lr=lr, tokens_per_s=tokens_per_s)
    bar.close()
    if stop:
        checkpoint(it)
        if master:
            print(f"interrupted: saved {ckpt_path} at iter {it}; continue with --init_from=resume")
    elif master and cfg.sample_tokens > 0:
        enc = load_tokenizer(cfg.data_dir)
        start = torch.tensor([[meta["eot_token"]]], device=device)  # a fresh document
        with autocast:
            out = raw_model.eval().generate(start, cfg.sample_tokens, temperature=0.8, top_k=200)
        print(f"val loss {val_loss:.4f}; a sample:\n{'-' * 60}\n{enc.decode(out[0, 1:].tolist())}\n{'-' * 60}")
    if ddp:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
