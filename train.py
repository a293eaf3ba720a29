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

import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from tqdm import tqdm

from checkpoint import load_model, save_checkpoint
from common import autocast_for, check_positive, parse_settings, pick_device, progress
from data.prepare import DataError, load_meta, load_split, load_tokenizer, prepare
from data.tasks import TASKS, TaskMaker
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
    retrieval: float = 0.0  # fraction of training sequences replaced by needle tasks (data/tasks.py)
    retrieval_keys: int = 4  # the most needles of a multikey training example
    retrieval_tasks: str = "passkey,multikey,multivalue"  # drawn uniformly: a task named twice comes twice as often
    retrieval_start: float = 0.0  # the mix begins at this fraction of max_iters (0 = from the start)


# -----------------------------------------------------------------------------
# data: the batch of iteration `it` is a function of (seed, it, rank) alone, so a resumed run
# sees exactly the batches the uninterrupted one would have


def get_batch(tokens, it, cfg, block_size, rank, device, stream, tasks=None):
    """(inputs, targets), each (batch_size * grad_accum, block_size): windows of the token stream.
    With tasks = (TaskMaker, tokens, spans) and cfg.retrieval > 0 (from retrieval_start on), a
    fraction cfg.retrieval of them, chosen at random, are needle examples instead (data/tasks.py),
    of the same length, trained on every token like the rest (their filler is book text)."""
    rng = np.random.default_rng([cfg.seed, stream, it, rank])
    n = cfg.batch_size * cfg.grad_accum
    starts = rng.integers(0, len(tokens) - block_size - 1, size=n)
    chunk = np.stack([tokens[s:s + block_size + 1] for s in starts]).astype(np.int64)  # (n, T + 1)
    if tasks is not None and cfg.retrieval > 0 and it >= cfg.retrieval_start * cfg.max_iters:
        maker, task_tokens, task_spans = tasks
        task_rng = np.random.default_rng([cfg.seed, stream, it, rank, 1])  # the text windows stay as they were
        n_tasks = int(cfg.retrieval * n + task_rng.random())  # rounded at random: the mean is exactly F * n
        for row in task_rng.choice(n, size=n_tasks, replace=False):
            chunk[row] = maker.sample(block_size + 1, task_tokens, task_spans, task_rng, tasks=cfg.retrieval_tasks.split(","),
                                      max_keys=cfg.retrieval_keys).tokens
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


# -----------------------------------------------------------------------------
# the run, step by step


def build_configs(argv):
    settings = parse_settings(argv, TrainConfig, GPTConfig, doc=__doc__)
    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in settings.items() if k in names})
    check_positive(cfg, "batch_size", "grad_accum", "max_iters", "eval_interval", "eval_iters", "log_interval",
                   "retrieval_keys")
    if not 0 <= cfg.retrieval < 1:
        raise SystemExit(f"error: --retrieval={cfg.retrieval} must be a fraction in [0, 1)")
    unknown = set(cfg.retrieval_tasks.split(",")) - set(TASKS)
    if unknown:
        raise SystemExit(f"error: --retrieval_tasks: unknown task {sorted(unknown)[0]!r}; the tasks are {', '.join(TASKS)}")
    if not 0 <= cfg.retrieval_start < 1:
        raise SystemExit(f"error: --retrieval_start={cfg.retrieval_start} must be a fraction of max_iters in [0, 1)")
    if cfg.arch not in ARCHS:
        raise SystemExit(f"error: --arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
    model_settings = {k: v for k, v in settings.items() if k not in names}
    return cfg, model_settings


def setup_processes(cfg):
    """(device, rank, world): one process, or one of torchrun's (one per GPU)."""
    device, rank, world = pick_device(cfg.device), 0, 1
    if "RANK" in os.environ:  # launched by torchrun
        torch.distributed.init_process_group("nccl")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    return device, rank, world


def load_data(cfg, master, distributed):
    """(meta, train tokens, val tokens, tasks); the default dataset is prepared on first use.
    tasks is what get_batch needs for the retrieval mix, or None without one."""
    try:
        if not os.path.exists(os.path.join(cfg.data_dir, "meta.json")) and cfg.data_dir == DEFAULT_DATA:
            if master:
                print(f"{DEFAULT_DATA} is missing: preparing it (python data/prepare.py)")
                prepare("shakespeare", out_dir=DEFAULT_DATA)
            if distributed:
                torch.distributed.barrier()
        meta = load_meta(cfg.data_dir)
        train_tokens, train_spans = load_split(cfg.data_dir, "train")
        val_tokens, _ = load_split(cfg.data_dir, "val")
        tasks = (TaskMaker(load_tokenizer(cfg.data_dir)), train_tokens, train_spans) if cfg.retrieval > 0 else None
    except DataError as e:
        raise SystemExit(f"error: {e}")
    return meta, train_tokens, val_tokens, tasks


def build_model(cfg, model_settings, meta, device):
    """(model, checkpoint or None): from scratch, resumed, or another run's weights in this
    architecture (resume continues the saved architecture; PATH keeps only the source's sizes)."""
    arch_settings = {**ARCHS[cfg.arch], **model_settings}
    if cfg.init_from == "scratch":
        try:
            return GPT(GPTConfig(**{"vocab_size": meta["vocab_size"], **arch_settings})).to(device), None
        except ValueError as e:
            raise SystemExit(f"error: {e}")
    resume = cfg.init_from == "resume"
    source = cfg.out_dir if resume else cfg.init_from
    sizes = ("vocab_size", "n_layer", "n_head", "n_embd")
    overrides = {} if resume else {k: v for k, v in arch_settings.items() if k not in sizes}
    return load_model(source, device, **overrides)


class RunFolder:
    """out_dir as the run writes it: log.jsonl and ckpt.pt, by rank 0 alone (the other ranks'
    calls do nothing). On resume, log lines past the checkpoint are dropped, so the curve
    continues from there."""

    def __init__(self, cfg, model, optimizer, meta, start_iter, master):
        self.cfg, self.model, self.optimizer, self.meta, self.master = cfg, model, optimizer, meta, master
        self.ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
        if not master:
            return
        os.makedirs(cfg.out_dir, exist_ok=True)
        log_path = os.path.join(cfg.out_dir, "log.jsonl")
        kept = []
        if start_iter > 0 and os.path.exists(log_path):
            kept = [line for line in open(log_path) if json.loads(line)["iter"] <= start_iter]
        with open(log_path, "w") as f:
            f.writelines(kept)
        self.log_file = open(log_path, "a")

    def log(self, **row):
        if self.master:
            self.log_file.write(json.dumps(row) + "\n")
            self.log_file.flush()

    def save(self, it, val_loss):
        if self.master:
            cfg, meta = self.cfg, self.meta
            save_checkpoint(self.ckpt_path, model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                            model_config=asdict(self.model.config), train_config=asdict(cfg), iter=it,
                            val_loss=val_loss,
                            data={"data_dir": os.path.abspath(cfg.data_dir), "seed": cfg.seed, "next_iter": it,
                                  "tokenizer": meta["tokenizer"], "vocab_size": meta["vocab_size"]})

    def last_good(self):
        return f"the last good checkpoint is {self.ckpt_path}" if os.path.exists(self.ckpt_path) else "no checkpoint was written"


def train_step(model, optimizer, x, y, cfg, distributed, autocast):
    """One optimizer step over grad_accum micro-batches; returns the mean loss (a float)."""
    loss_sum = 0.0
    for micro, (xb, yb) in enumerate(zip(x.split(cfg.batch_size), y.split(cfg.batch_size))):
        sync = not distributed or micro == cfg.grad_accum - 1  # all-reduce gradients once per step
        with (nullcontext() if sync else model.no_sync()), autocast:
            loss = model(xb, yb)[1] / cfg.grad_accum
        loss.backward()
        loss_sum += loss.detach()
    loss_value = loss_sum.item()
    if not math.isfinite(loss_value):  # the weights that gave it are never stepped into, never saved
        return loss_value
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_value


def catch_ctrl_c():
    """Ctrl-C asks to stop after the current step, which then saves; a second one stops at once.
    Returns the list that becomes non-empty once asked."""
    stop = []

    def on_sigint(signum, frame):
        if stop:
            raise KeyboardInterrupt
        stop.append(signum)
        tqdm.write("stopping after this step (Ctrl-C again to stop at once, without saving)")

    signal.signal(signal.SIGINT, on_sigint)
    return stop


def main(argv):
    cfg, model_settings = build_configs(argv)
    device, rank, world = setup_processes(cfg)
    master, distributed = rank == 0, "RANK" in os.environ
    torch.manual_seed(cfg.seed)
    autocast = autocast_for(device)
    meta, train_tokens, val_tokens, tasks = load_data(cfg, master, distributed)
    model, ckpt = build_model(cfg, model_settings, meta, device)
    L = model.config.block_size
    if model.config.vocab_size < meta["vocab_size"]:
        raise SystemExit(f"error: the model's vocab_size {model.config.vocab_size} is smaller than the data's {meta['vocab_size']}")
    if min(len(train_tokens), len(val_tokens)) <= L + 1:
        raise SystemExit(f"error: block_size={L} does not fit in the data ({len(val_tokens)} val tokens)")
    if tasks:  # the longest example the mix can draw must fit in a training sequence
        k = cfg.retrieval_keys
        most = {"passkey": None, "multikey": k, "multivalue": max(2, k)}  # the keys of its longest example
        need = max(tasks[0].min_length(t, most[t]) for t in set(cfg.retrieval_tasks.split(",")))
        if L + 1 < need:
            raise SystemExit(f"error: --retrieval with --retrieval_keys={k} needs block_size >= {need - 1}, got {L}")
    resume = cfg.init_from == "resume"
    start_iter, val_loss = (ckpt["iter"], ckpt.get("val_loss")) if resume else (0, None)
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                           torch.device(device).type)
    if resume:
        optimizer.load_state_dict(ckpt["optimizer"])
    ckpt = None  # free memory
    model.rope_for(L, device)  # built before compiling: no growth inside the graph
    runner = torch.compile(model) if cfg.compile else model  # runs the steps; `model` is what is saved
    if distributed:
        runner = torch.nn.parallel.DistributedDataParallel(runner, device_ids=[torch.cuda.current_device()])
    run = RunFolder(cfg, model, optimizer, meta, start_iter, master)
    if master:
        print(f"{cfg.arch} ({model.config.layer_pattern}, window {model.config.window}, {model.config.attn}): "
              f"{model.num_params() / 1e6:.2f}M parameters, {device}{f' x{world}' if distributed else ''}, "
              f"data {cfg.data_dir} ({len(train_tokens):,} train tokens)")

    stop = catch_ctrl_c()
    tokens_per_iter = cfg.batch_size * cfg.grad_accum * L * world
    bar = progress(total=cfg.max_iters, initial=start_iter, disable=not master, unit="it")
    step_time = 0.0
    for it in range(start_iter, cfg.max_iters + 1):
        # evaluate every eval_interval (a resumed run did so before its checkpoint was saved)
        if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and not (it == start_iter > 0):
            val_loss = estimate_val_loss(runner, val_tokens, cfg, L, device, autocast)
            run.log(iter=it, val_loss=val_loss)
            if it > start_iter:
                run.save(it, val_loss)
        if it == cfg.max_iters or stop:
            break
        t0 = time.time()
        lr = get_lr(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(train_tokens, it, cfg, L, rank, device, stream=0, tasks=tasks)
        loss = train_step(runner, optimizer, x, y, cfg, distributed, autocast)
        if not math.isfinite(loss):
            bar.close()
            raise SystemExit(f"error: loss became {loss} at iter {it}; stopped, {run.last_good()}. Try a lower --learning_rate")
        step_time += time.time() - t0  # evaluation and checkpoints excluded from the rate
        bar.update(1)
        if (it + 1) % cfg.log_interval == 0:
            tokens_per_s, step_time = tokens_per_iter * cfg.log_interval / step_time, 0.0
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_loss or float('nan'):.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            run.log(iter=it + 1, loss=loss, lr=lr, tokens_per_s=tokens_per_s)
    bar.close()
    finish(cfg, run, stop, it, model, device, autocast, val_loss)
    if distributed:
        torch.distributed.destroy_process_group()


def finish(cfg, run, stop, it, model, device, autocast, val_loss):
    """After the loop: save an interrupted run, or print a sample of a finished one."""
    if stop:
        run.save(it, val_loss)
        if run.master:
            print(f"interrupted: saved {run.ckpt_path} at iter {it}; continue with --init_from=resume")
    elif run.master and cfg.sample_tokens > 0:
        enc = load_tokenizer(cfg.data_dir)
        start = torch.tensor([[run.meta["eot_token"]]], device=device)  # a fresh document
        with autocast:
            out = model.eval().generate(start, cfg.sample_tokens, temperature=0.8, top_k=200)
        print(f"val loss {val_loss:.4f}; a sample:\n{'-' * 60}\n{enc.decode(out[0, 1:].tolist())}\n{'-' * 60}")


if __name__ == "__main__":
    main(sys.argv[1:])
