"""
Train a SWAN-GPT (or its baselines) on one CPU, one GPU, or several processes (torchrun).

    python train.py                                          # the CPU default: small swan, Shakespeare
    python train.py config/gutenberg.py --arch=gpt           # a preset, then --key=value overrides
    python train.py --init_from=resume --out_dir=out         # continue a stopped run
    python train.py --init_from=out-gpt --arch=swan          # SWAN conversion of a GPT checkpoint
    torchrun --standalone --nproc_per_node=2 train.py        # DDP: gloo on CPUs, NCCL on GPUs (one each)

Every field of TrainConfig (train_config.py) and of model.GPTConfig is a setting. A preset in
config/ is a Python file of plain `key = value` lines (read as literals, never executed).

A resumed run (--init_from=resume) takes every setting from its checkpoint; only those in
CHANGEABLE_ON_RESUME may be given differently, and the split of its global batch (batch_size x
grad_accum x processes) may change if the product stays. A new run never replaces a run already
in out_dir unless --overwrite is given. An interrupted run (Ctrl-C) saves and exits with code 130.
"""

import gc
import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from checkpoint import check_tokenizer, load_checkpoint, model_from, save_checkpoint
from common import autocast_for, note, pick_device, progress
from conversion import (SIZES, check_conversion, check_faded_layers, choose_nope_layers, conversion_note, distill_kl,
                        load_teacher, ready_teacher)
from data.prepare import DataError, load_meta, load_split, load_tokenizer, prepare
from data.tasks import TaskMaker
from model import ARCHS, GPT, GPTConfig
from train_config import DEFAULT_DATA, build_configs, check_out_dir, retrieval_values

# -----------------------------------------------------------------------------
# data: the global batch of iteration `it` is a function of (seed, it) alone, one fixed set of
# sequences however many processes share it, so a resumed run (on any number of processes) sees
# exactly the batches the uninterrupted one would have


def get_batch(tokens, it, cfg, block_size, rank, device, stream, tasks=None, world=1):
    """(inputs, targets, weights) of process `rank` of `world`, inputs and targets each
    (batch_size * grad_accum, block_size): its contiguous share of the global batch, world times as
    many windows of the token stream. With tasks = (TaskMaker, tokens, spans) and cfg.retrieval > 0
    (from retrieval_start on), a fraction cfg.retrieval of the global batch, chosen at random, are
    needle examples instead (data/tasks.py), of the same length, trained on every token like the
    rest (their filler is book text). weights is None, or with cfg.retrieval_answer_weight != 1
    the (same shape) float weight of each target in the loss: the answers' tokens weigh that much
    more than the others, and the weights have mean 1 over the global batch."""
    n = cfg.batch_size * cfg.grad_accum  # this process's rows
    rng = np.random.default_rng([cfg.seed, stream, it, 0])  # the key of rank 0 before: one process draws as it did
    starts = rng.integers(0, len(tokens) - block_size - 1, size=n * world)
    chunk = np.stack([tokens[s:s + block_size + 1] for s in starts]).astype(np.int64)  # (n * world, T + 1)
    weights = None
    if tasks is not None and cfg.retrieval > 0 and it >= cfg.retrieval_start * cfg.max_iters:
        maker, task_tokens, task_spans = tasks
        task_rng = np.random.default_rng([cfg.seed, stream, it, 0, 1])  # the text windows stay as they were
        n_tasks = int(cfg.retrieval * n * world + task_rng.random())  # rounded at random: the mean is exactly F * n
        if cfg.retrieval_answer_weight != 1:
            weights = np.ones((n * world, block_size), dtype=np.float32)  # (n * world, T), one per target
        # every process makes every example: each one draws from task_rng after the one before
        for row in task_rng.choice(n * world, size=n_tasks, replace=False):
            example = maker.sample(block_size + 1, task_tokens, task_spans, task_rng, tasks=cfg.retrieval_tasks.split(","),
                                   max_keys=cfg.retrieval_keys, max_values=retrieval_values(cfg))
            chunk[row] = example.tokens
            if weights is not None:  # target t is token t + 1: the answer's targets sit one place earlier
                weights[row, example.answer[0] - 1:example.answer[1] - 1] = cfg.retrieval_answer_weight
    chunk = torch.from_numpy(chunk[rank * n:(rank + 1) * n]).to(device, non_blocking=True)
    if weights is not None:  # a mean of 1 over the global batch: the weighted mean is a plain mean of w * loss,
        weights /= weights.mean()  # the same however the batch is split over processes and micro-batches
        weights = torch.from_numpy(weights[rank * n:(rank + 1) * n]).to(device, non_blocking=True)
    return chunk[:, :-1], chunk[:, 1:], weights  # (B * grad_accum, T) inputs, targets; weights or None


def get_lr(it, cfg):
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / cfg.warmup_iters
    progress = min(1.0, (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters))
    min_lr = cfg.learning_rate * cfg.min_lr_ratio
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.learning_rate - min_lr)


def outside_n_blocks(model):
    """--converted_first: what its first phase leaves as it is, every parameter but those of the
    N layers' blocks."""
    trained = {id(p) for block in model.transformer.h if block.attn.kind == "N" for p in block.parameters()}
    return [p for p in model.parameters() if id(p) not in trained]


def rope_fraction(it, cfg):
    """--rope_fade: the fraction of RoPE's angles a conversion's N layers get at iteration it,
    1 at the start down to 0 at rope_fade * max_iters and after (GPT.set_rope_fade)."""
    if cfg.rope_fade == 0 or cfg.max_iters == 0:
        return 0.0
    return max(0.0, 1 - it / (cfg.rope_fade * cfg.max_iters))


@torch.no_grad()
def estimate_val_loss(model, val_tokens, cfg, block_size, device, autocast, rank=0, world=1):
    model.eval()
    losses = []
    for k in range(cfg.eval_iters):  # the same windows at every evaluation: curves are comparable
        x, y, _ = get_batch(val_tokens, k, cfg, block_size, rank, device, stream=1, world=world)
        for xb, yb in zip(x.split(cfg.batch_size), y.split(cfg.batch_size)):
            with autocast:
                losses.append(model(xb, yb)[1].item())
    model.train()
    return global_mean(losses, device, world)


def global_mean(values, device, world):
    """The mean of values over every process (all micro-batches are the same size)."""
    if world == 1:
        return float(np.mean(values))
    total = torch.tensor([sum(values), len(values)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total)
    return (total[0] / total[1]).item()


# -----------------------------------------------------------------------------
# settings: a new run's as given; a resumed run's from its checkpoint; a conversion's sizes from its source


# -----------------------------------------------------------------------------
# the run, step by step


def setup_processes(cfg):
    """(device, rank, world): one process, or one of torchrun's: gloo on CPUs, NCCL on GPUs (one each)."""
    device = pick_device(cfg.device)
    if "RANK" not in os.environ:  # not launched by torchrun
        return device, 0, 1
    backend = "nccl" if device == "cuda" else "gloo"
    try:
        if device == "cuda":
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend)
    except (RuntimeError, ValueError) as e:
        raise SystemExit(f"error: cannot start the {backend} process group on {device}: {str(e).splitlines()[0][:200]}")
    return device, torch.distributed.get_rank(), torch.distributed.get_world_size()


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
        tasks = None
        if cfg.retrieval > 0:
            maker = TaskMaker(load_tokenizer(cfg.data_dir), cfg.retrieval_list, cfg.retrieval_order)
            tasks = (maker, train_tokens, train_spans)
    except DataError as e:
        raise SystemExit(f"error: {e}")
    return meta, train_tokens, val_tokens, tasks


def build_model(cfg, model_settings, meta, device, train_tokens, rank=0, world=1):
    """(model, checkpoint or None): from scratch, resumed, or another run's weights in this
    architecture (a conversion keeps the source's sizes, says what it changes, and with
    --nope_layers=measured takes the layer_pattern its source's measurements give)."""
    arch_settings = {**ARCHS[cfg.arch], **model_settings}
    if cfg.init_from == "scratch":
        try:
            model, ckpt = GPT(GPTConfig(**{"vocab_size": meta["vocab_size"], **arch_settings})).to(device), None
        except ValueError as e:
            raise SystemExit(f"error: {e}")
    else:
        resume = cfg.init_from == "resume"
        source = cfg.out_dir if resume else cfg.init_from
        overrides = {} if resume else {k: v for k, v in arch_settings.items() if k not in SIZES}
        measure = not resume and cfg.nope_layers.startswith("measured") and set(overrides["layer_pattern"]) == {"N", "S"}
        # to be measured, the source is built with its own layer pattern first
        ckpt, config = load_checkpoint(source, device)
        model = model_from(ckpt, config, source, device,
                           **{k: v for k, v in overrides.items() if not (measure and k == "layer_pattern")})
        check_tokenizer(ckpt, meta, source, cfg.data_dir)
        if not resume:
            check_conversion(source, ckpt, model_settings, cfg.source_optimizer)
        if measure:
            overrides["layer_pattern"] = measured_nope_layers(cfg, model, source, overrides["layer_pattern"], train_tokens,
                                                              device, rank, world)
            model = model_from(ckpt, config, source, device, **overrides)
        if not resume:
            note(conversion_note(source, ckpt, model.config))
    if cfg.init_from != "resume":
        new_model_notes(cfg, model_settings, model.config)
    return model, ckpt


def measured_nope_layers(cfg, model, source, pattern, train_tokens, device, rank, world):
    """--nope_layers=measured(-spread): the layer pattern conversion.py chooses from four global batches of
    training data (each process measuring its share), and a note of what it measured."""
    batches = []
    for k in range(4):  # stream 2: batches of their own, not the first ones training will see
        x, y, _ = get_batch(train_tokens, k, cfg, model.config.block_size, rank, device, stream=2, world=world)
        batches += list(zip(x.split(cfg.batch_size), y.split(cfg.batch_size)))
    chosen, cost_n, cost_s = choose_nope_layers(model, pattern, batches, autocast_for(device), world,
                                                spread=cfg.nope_layers == "measured-spread")
    costs = ", ".join(f"{layer}: {n:+.4g}/{s:+.4g}" for layer, (n, s) in enumerate(zip(cost_n, cost_s)))
    note(f"--nope_layers={cfg.nope_layers}: loss added to {source} by each layer alone as N/S ({costs}); layer_pattern={chosen}")
    return chosen


def new_model_notes(cfg, model_settings, config):
    for key in ("layer_pattern", "attn", "alibi"):  # what --arch sets, given beside it
        if model_settings.get(key, ARCHS[cfg.arch][key]) != ARCHS[cfg.arch][key]:
            note(f"--{key}={model_settings[key]} overrides --arch={cfg.arch}'s {ARCHS[cfg.arch][key]}")
    if "S" in config.layer_pattern and config.window >= config.block_size:
        note(f"window {config.window} >= block_size {config.block_size}: in training the S layers see every earlier "
             f"key (global RoPE layers); the window limits them only on sequences longer than {config.window}")


def check_fits(cfg, config, meta, train_tokens, val_tokens, tasks):
    """The model against the data, and the longest retrieval example against the training length."""
    L = config.block_size
    if config.vocab_size < meta["vocab_size"]:
        raise SystemExit(f"error: the model's vocab_size {config.vocab_size} is smaller than the data's {meta['vocab_size']}")
    if min(len(train_tokens), len(val_tokens)) <= L + 1:
        raise SystemExit(f"error: block_size={L} does not fit in the data ({len(val_tokens)} val tokens)")
    if tasks:
        k, v = cfg.retrieval_keys, retrieval_values(cfg)
        most = {"passkey": None, "multikey": k, "multivalue": max(2, v)}  # the needles of its longest example
        need = {t: tasks[0].min_length(t, most[t]) for t in set(cfg.retrieval_tasks.split(","))}
        task = max(need, key=need.get)
        if L + 1 < need[task]:
            setting = f"--retrieval_values={v}" if task == "multivalue" and cfg.retrieval_values else f"--retrieval_keys={k}"
            raise SystemExit(f"error: --retrieval with {setting} needs block_size >= {need[task] - 1}, got {L}")


def make_optimizer(model, cfg, ckpt, device):
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                           torch.device(device).type)
    if cfg.init_from == "resume" or cfg.source_optimizer:  # a conversion keeps the sizes: the moments fit
        optimizer.load_state_dict(ckpt["optimizer"])  # its lr is replaced at every step (get_lr)
        for group, decay in zip(optimizer.param_groups, (cfg.weight_decay, 0.0)):  # this run's, not the source's
            group.update(weight_decay=decay, betas=(cfg.beta1, cfg.beta2))
    return optimizer


class RunFolder:
    """out_dir as the run writes it: log.jsonl and ckpt.pt, by rank 0 alone (the other ranks'
    calls do nothing). On resume, log lines past the checkpoint are dropped, so the curve
    continues from there; a new run (--overwrite) removes the checkpoint it replaces at once."""

    def __init__(self, cfg, model, optimizer, meta, start_iter, master, world):
        self.cfg, self.model, self.optimizer, self.meta, self.master = cfg, model, optimizer, meta, master
        self.global_batch = cfg.batch_size * cfg.grad_accum * world
        self.ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
        self.saved_iter = start_iter if cfg.init_from == "resume" else None  # the checkpoint on disk is of this iteration
        if not master:
            return
        os.makedirs(cfg.out_dir, exist_ok=True)
        if cfg.init_from != "resume" and os.path.exists(self.ckpt_path):
            os.remove(self.ckpt_path)  # its log goes too: what is left is the new run's alone
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
        self.saved_iter = it
        if self.master:
            cfg, meta = self.cfg, self.meta
            save_checkpoint(self.ckpt_path, model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                            model_config=asdict(self.model.config), train_config=asdict(cfg), iter=it,
                            val_loss=val_loss,
                            data={"data_dir": os.path.abspath(cfg.data_dir), "seed": cfg.seed, "next_iter": it,
                                  "tokenizer": meta["tokenizer"], "vocab_size": meta["vocab_size"],
                                  "tokenizer_sha256": meta.get("tokenizer_sha256"), "global_batch": self.global_batch})

    def last_good(self):
        return f"the last good checkpoint is {self.ckpt_path}" if os.path.exists(self.ckpt_path) else "no checkpoint was written"


def train_step(model, optimizer, x, y, cfg, world, autocast, teacher=None, weights=None, frozen=None):
    """One optimizer step over grad_accum micro-batches; returns the mean cross-entropy over every
    process (a float, the same on each; NaN if the objective, with distillation, is not finite).
    weights (like y, or None; see get_batch): the objective's cross-entropy is then the mean of
    weight x cross-entropy, a weighted mean over the global batch. frozen: parameters the step
    leaves untouched (their gradients dropped, so AdamW skips them: no decay, no moments)."""
    loss_sum, objective_sum = 0.0, 0.0
    micro_weights = weights.split(cfg.batch_size) if weights is not None else [None] * cfg.grad_accum
    for micro, (xb, yb, wb) in enumerate(zip(x.split(cfg.batch_size), y.split(cfg.batch_size), micro_weights)):
        sync = world == 1 or micro == cfg.grad_accum - 1  # all-reduce gradients once per step
        with (nullcontext() if sync else model.no_sync()), autocast:
            if wb is None:
                logits, loss = model(xb, yb)
                objective = loss
            else:
                logits, per_token = model(xb, yb, reduction="none")  # (b, T)
                loss, objective = per_token.mean(), (per_token * wb).mean()
            if teacher is not None:
                kl = distill_kl(logits, teacher, xb, yb, cfg.distill_windows)
                objective = (1 - cfg.distill_weight) * objective + cfg.distill_weight * kl
        (objective / cfg.grad_accum).backward()
        loss_sum += loss.detach() / cfg.grad_accum
        objective_sum += objective.detach() / cfg.grad_accum
    sums = torch.stack([loss_sum, objective_sum])
    if world > 1:
        torch.distributed.all_reduce(sums)
        sums /= world
    loss_value, objective_value = sums.tolist()
    if not math.isfinite(objective_value):  # the weights that gave it are never stepped into, never saved
        return float("nan")
    for p in frozen or ():
        p.grad = None
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_value


@contextmanager
def ctrl_c(run):
    """Ctrl-C asks to stop after the current step, which then saves (finish); a second one stops
    at once, without saving: a save under way is dropped whole (atomic_write), and the process
    exits with code 130 either way. Yields the list that becomes non-empty once asked."""
    stop = []

    def on_sigint(signum, frame):
        if stop:
            raise KeyboardInterrupt
        stop.append(signum)
        if run.master:
            tqdm.write("stopping after this step (Ctrl-C again to stop at once, without saving)")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    except KeyboardInterrupt:
        if run.master:
            print(f"interrupted: stopped at once by a second Ctrl-C, without saving; {run.last_good()}", file=sys.stderr)
        raise SystemExit(130)
    finally:
        signal.signal(signal.SIGINT, previous)


def peak_memory(device):
    """{peak_mem_gib: the most GPU memory this process has held so far}, or {} off the GPU."""
    if not str(device).startswith("cuda"):
        return {}
    return {"peak_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3)}


def agreed_stop(stop, device, world):
    """Whether any process was asked to stop: torchrun passes Ctrl-C to each, not at one instant,
    and all must stop after the same step."""
    if world == 1:
        return bool(stop)
    flag = torch.tensor([float(len(stop))], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return flag.item() > 0


def main(argv):
    cfg, model_settings = build_configs(argv, __doc__)
    check_out_dir(cfg)
    device, rank, world = setup_processes(cfg)
    master, distributed = rank == 0, "RANK" in os.environ
    torch.manual_seed(cfg.seed)
    autocast = autocast_for(device)
    meta, train_tokens, val_tokens, tasks = load_data(cfg, master, distributed)
    # the teacher is checked before a conversion measures or anything trains
    teacher = load_teacher(cfg.distill_from, meta, cfg.data_dir, device) if cfg.distill_from else None
    model, ckpt = build_model(cfg, model_settings, meta, device, train_tokens, rank, world)
    L = model.config.block_size
    check_fits(cfg, model.config, meta, train_tokens, val_tokens, tasks)
    start_iter, val_loss = (ckpt["iter"], ckpt.get("val_loss")) if cfg.init_from == "resume" else (0, None)
    optimizer = make_optimizer(model, cfg, ckpt, device)
    if teacher is not None:
        teacher = ready_teacher(teacher, model.config, cfg.distill_from, device, cfg.compile)
    if cfg.converted_first and "N" not in model.config.layer_pattern:
        raise SystemExit(f"error: --converted_first trains the N layers alone first; layer_pattern={model.config.layer_pattern} has none")
    if cfg.rope_fade and cfg.init_from != "resume":
        check_faded_layers(cfg.init_from, ckpt, model.config)
    first_phase_frozen = outside_n_blocks(model) if cfg.converted_first else None
    ckpt = None  # free memory
    model.rope_for(L, device)  # built before compiling: no growth inside the graph
    runner = torch.compile(model) if cfg.compile else model  # runs the steps; `model` is what is saved
    if distributed:
        device_ids = [torch.device(device)] if device != "cpu" else None  # gloo on the CPU takes none
        runner = torch.nn.parallel.DistributedDataParallel(runner, device_ids=device_ids)
    run = RunFolder(cfg, model, optimizer, meta, start_iter, master, world)
    if master:
        print(f"{cfg.arch} ({model.config.layer_pattern}, window {model.config.window}, {model.config.attn}): "
              f"{model.num_params() / 1e6:.2f}M parameters, {device}{f' x{world}' if distributed else ''}, "
              f"data {cfg.data_dir} ({len(train_tokens):,} train tokens)")

    tokens_per_iter = run.global_batch * L
    bar = progress(total=cfg.max_iters, initial=start_iter, disable=not master, unit="it")
    step_time = 0.0
    with ctrl_c(run) as stop:
        for it in range(start_iter, cfg.max_iters + 1):
            model.set_rope_fade(rope_fraction(it, cfg))  # the steps and the evaluation of iteration it alike
            # evaluate every eval_interval (a resumed run did so before its checkpoint was saved)
            if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and not (it == start_iter > 0):
                val_loss = estimate_val_loss(runner, val_tokens, cfg, L, device, autocast, rank, world)
                run.log(iter=it, val_loss=val_loss)
                if it > start_iter or cfg.max_iters == 0:  # 0: a conversion saved as converted
                    run.save(it, val_loss)
            # a stop asked by --stop_at is the same on every process; Ctrl-C must be agreed on
            stopped = it < cfg.max_iters and (it == cfg.stop_at > 0 or agreed_stop(stop, device, world))
            if it == cfg.max_iters or stopped:
                break
            t0 = time.time()
            lr = get_lr(it, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y, weights = get_batch(train_tokens, it, cfg, L, rank, device, stream=0, tasks=tasks, world=world)
            frozen = first_phase_frozen if it < cfg.converted_first * cfg.max_iters else None
            loss = train_step(runner, optimizer, x, y, cfg, world, autocast, teacher, weights, frozen)
            if not math.isfinite(loss):
                bar.close()
                raise SystemExit(f"error: loss became {loss} at iter {it}; stopped, {run.last_good()}. Try a lower --learning_rate")
            step_time += time.time() - t0  # evaluation and checkpoints excluded from the rate
            bar.update(1)
            if (it + 1) % cfg.log_interval == 0:
                tokens_per_s, step_time = tokens_per_iter * cfg.log_interval / step_time, 0.0
                bar.set_postfix(loss=f"{loss:.3f}", val=f"{val_loss or float('nan'):.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
                run.log(iter=it + 1, loss=loss, lr=lr, tokens_per_s=tokens_per_s, **peak_memory(device))
        bar.close()
        finish(cfg, run, stopped, it, model, device, autocast, val_loss)


def finish(cfg, run, stopped, it, model, device, autocast, val_loss):
    """After the loop: save a run stopped at --stop_at (exit 0: it did what was asked), save an
    interrupted run and exit with 130 (so that `train && evaluate` does not go on with a
    half-trained model), or print a sample of a finished one."""
    if stopped and run.saved_iter != it:  # not saved at this iteration yet (evaluations save)
        run.save(it, val_loss)
    if stopped and it == cfg.stop_at > 0:  # asked for: a finished part of the run, not a failure
        if run.master:
            print(f"stopped at iter {it} as --stop_at asked: saved {run.ckpt_path}; continue with --init_from=resume")
        return
    if stopped:
        if run.master:
            print(f"interrupted: saved {run.ckpt_path} at iter {it}; continue with --init_from=resume")
        raise SystemExit(130)
    if run.master and cfg.sample_tokens > 0:
        enc = load_tokenizer(cfg.data_dir)
        start = torch.tensor([[run.meta["eot_token"]]], device=device)  # a fresh document
        with autocast:
            out = model.eval().generate(start, cfg.sample_tokens, temperature=0.8, top_k=200)
        print(f"val loss {val_loss:.4f}; a sample:\n{'-' * 60}\n{enc.decode(out[0, 1:].tolist())}\n{'-' * 60}")


def command_line(argv):
    """main for `python train.py` and torchrun. Every rank meets an expected failure alike (the
    settings, the data, the checkpoint and the global loss are the same on each), so rank 0 alone
    prints its line; an unexpected one prints its traceback on the rank it hit, and torchrun stops
    the others."""
    try:
        main(argv)
        code = 0
    except KeyboardInterrupt:  # before training began; during it, ctrl_c handles it
        print("interrupted", file=sys.stderr)
        code = 130
    except SystemExit as e:
        code = e.code
    # here, out of the except blocks, main's frames are gone: DDP holds the process group in
    # reference cycles, and freed only at interpreter exit, gloo's threads abort the process
    if torch.distributed.is_initialized():
        gc.collect()
        torch.distributed.destroy_process_group()
    if isinstance(code, str) and os.environ.get("RANK", "0") != "0":
        code = 1  # its line is rank 0's
    sys.exit(code)


if __name__ == "__main__":
    command_line(sys.argv[1:])
