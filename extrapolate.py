"""
Beyond the training length L: loss versus context length out to 32x L (the project's headline
figure), or retrieval of needles from far back (`--task=retrieval`, see retrieval.py).

    python extrapolate.py out-gpt out-swan                       # L, 2L, 4L ... 32L (L: the first run's)
    python extrapolate.py out-swan --scale_base=off,128,362,1000 --tune_scale
    python extrapolate.py out-*/ckpt.pt --lengths=512,4096 --num_windows=64 --out=figs/ext
    python extrapolate.py out-swan out-gpt --task=retrieval --tune_scale --out=figs/needles

Every run is evaluated on the val documents of its dataset (or of --data_dir, prepared with the
same tokenizer), at each length T on the SAME windows: T + 1 tokens (inputs and shifted targets)
inside one document, never across a boundary, never overlapping, chosen by a fixed seed before
any model is seen. Reported per run and setting: the mean loss over every predicted token, and
for the longest length the loss by position in log-spaced bins of context size (tokens seen: 1,
2-3, 4-7, ...), the paper's per-position view. With --tail=N only the last N tokens of each window
are scored, and every length's windows end where the longest length's do: the same N tokens of
text at every length, read with more and more context before them (no per-position view then).

Runs with N (NoPE) layers are also evaluated with dynamic attention scaling, one row per base in
--scale_base (`off` = none). --tune_scale picks each run's base on a quarter of the val documents
kept apart (every 4th by length, longest first) at the longest length; those documents are then
left out of every reported number. "off" is always a candidate, the grid grows past an edge until
the best base is inside it, then is refined between neighbours (tune_base). The paper's scale,
log(a + n) / log(a), is above 1 at every position, those the model trained on too;
--scale_from_L starts it at each run's L instead: 1 up to L, then 1 + log_a((a + n) / (a + L)),
the paper's curve less its rise up to L (its settings are named "a=... from L"). Writes OUT.csv
(every number) and OUT.png, by default into the first run's folder (RUN/extrapolation, or
RUN/retrieval with --task=retrieval), and prints a markdown table.
"""

import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from checkpoint import load_model, same_tokenizer, tokenizer_id, trained_tokenizer
from common import (autocast_for, check_out, check_positive, parse_list, parse_settings, pick_device, progress,
                    run_color, write_csv)
from data.prepare import DataError, load_meta, load_split
from model import ARCHS
import retrieval
from scaling import TUNE_GRID, scale_item, setting_name, tune_base

BATCH_TOKENS = 65536  # tokens per forward: 16384 tokens x 8192 vocab of fp32 logits is 0.5 GB already


@dataclass
class ExtrapolateConfig:
    task: str = "loss"  # loss | retrieval (needles in book text, scored by exact match)
    lengths: str = ""  # comma-separated eval lengths; default L, 2L, 4L, ... up to max_len
    max_len: int = 0  # default 32 L
    scale_base: str = ""  # comma-separated bases a > 1 and/or `off`, for runs with N layers
    tune_scale: bool = False  # also a per-run base tuned on held-out val documents
    scale_from_L: bool = False  # scaling begins at each run's L: 1 up to it, the paper's curve's rise beyond it
    num_windows: int = 32  # loss: windows per length (fewer if fewer fit)
    tail: int = 0  # loss: score only the last TAIL tokens of each window, the same ones at every length; 0 = all
    tasks: str = "passkey,multikey,multivalue"  # retrieval: which tasks
    num_keys: str = "4,16"  # retrieval: needles per multikey example, one row per value
    depths: str = "0,0.25,0.5,0.75,0.95"  # retrieval: where the asked needle sits (fraction of T)
    trials: int = 8  # retrieval: examples per (task, keys, length, depth)
    batch_size: int = 8  # windows per forward, capped at BATCH_TOKENS tokens
    device: str = "auto"  # auto | cpu | cuda
    out: str = ""  # writes OUT.csv and OUT.png; default: FIRST_RUN/extrapolation (or FIRST_RUN/retrieval)
    data_dir: str = ""  # default: the dataset the runs were trained on
    seed: int = 1337


def parse_args(argv):
    runs = [a for a in argv if not a.startswith("-")]
    settings = parse_settings([a for a in argv if a.startswith("-")], ExtrapolateConfig, doc=__doc__, presets=False)
    cfg = ExtrapolateConfig(**settings)
    if not runs:
        raise SystemExit("error: name at least one run directory (or ckpt.pt): python extrapolate.py OUT_DIR [...]")
    if cfg.task not in ("loss", "retrieval"):
        raise SystemExit(f"error: --task must be loss or retrieval, got {cfg.task!r}")
    check_positive(cfg, "num_windows", "batch_size", "trials")
    if cfg.tail < 0:
        raise SystemExit(f"error: --tail={cfg.tail} must be >= 0 (0 = score every token)")
    if cfg.lengths and cfg.max_len:
        raise SystemExit("error: give --lengths or --max_len, not both")
    device = pick_device(cfg.device)
    lengths = sorted(parse_list("lengths", cfg.lengths)) if cfg.lengths else None  # None: from L
    bases = parse_list("scale_base", cfg.scale_base, scale_item, lambda a: a > 1, "bases > 1 or off") if cfg.scale_base else [None]
    run_dir = runs[0] if os.path.isdir(runs[0]) else os.path.dirname(runs[0])  # a run folder, or its ckpt.pt
    cfg.out = cfg.out or os.path.join(run_dir, "extrapolation" if cfg.task == "loss" else "retrieval")
    check_out(cfg.out)
    return runs, cfg, lengths, bases, device


# -----------------------------------------------------------------------------
# windows: chosen once per length, from the documents alone, so every model sees the same ones


def choose_windows(spans, T, num_windows, seed):
    """Starts of up to num_windows windows of T + 1 tokens, each inside one document [start, end)
    of spans (n_docs, 2), none overlapping. Round-robin over the documents in a seeded order, so
    the windows spread over as many documents as possible; the same arguments give the same
    windows on every run, whichever other lengths are evaluated."""
    rng = np.random.default_rng([seed, T])
    per_doc = []
    for d in rng.permutation(len(spans)):
        start, end = (int(x) for x in spans[d])
        n = (end - start) // (T + 1)  # non-overlapping slots in this document
        shift = int(rng.integers(0, (end - start) - n * (T + 1) + 1))  # slack placed at random
        per_doc.append(list(start + shift + (T + 1) * rng.permutation(n)))
    chosen = []
    while len(chosen) < num_windows and any(per_doc):
        for slots in per_doc:
            if slots and len(chosen) < num_windows:
                chosen.append(slots.pop())
    return np.sort(np.array(chosen, dtype=np.int64))  # (n_windows,)


def tuning_split(spans):
    """(tune, report) document indices: every 4th document by length, longest first, is kept for
    tuning: a quarter of the documents, spread over the lengths, and the longest one among them."""
    order = np.argsort(-(spans[:, 1] - spans[:, 0]), kind="stable")
    return np.sort(order[::4]), np.sort(np.setdiff1d(order, order[::4]))


def position_bins(T):
    """Log-spaced bins of context size c = position + 1, inclusive: [1,1], [2,3], [4,7], ..., [2^k, T]."""
    lows = [2 ** k for k in range(max(1, (T - 1).bit_length()))]  # 1, 2, 4, ... < T
    return [(lo, (lows[i + 1] - 1) if i + 1 < len(lows) else T) for i, lo in enumerate(lows)]


# -----------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def window_losses(model, tokens, starts, T, batch_size, device, autocast, bar=None, tail=0):
    """Per-position loss summed over the windows at starts: (T,) float64 on the CPU, or (tail,)
    for the last tail positions only (their logits alone are computed: long windows fit)."""
    total = torch.zeros(tail or T, dtype=torch.float64)
    batch = max(1, min(batch_size, BATCH_TOKENS // T))  # long windows go one or a few at a time
    for i in range(0, len(starts), batch):
        chunk = np.stack([tokens[s:s + T + 1] for s in starts[i:i + batch]]).astype(np.int64)  # (b, T+1)
        chunk = torch.from_numpy(chunk).to(device)
        with autocast:
            if tail:
                logits, _ = model(chunk[:, :-1], last=tail)  # (b, tail, vocab)
                loss = F.cross_entropy(logits.float().transpose(1, 2), chunk[:, -tail:], reduction="none")  # (b, tail)
            else:
                _, loss = model(chunk[:, :-1], chunk[:, 1:], reduction="none")  # (b, T)
        total += loss.double().sum(0).cpu()
        if bar is not None:
            bar.update(chunk.shape[0] * T)
    return total


def run_label(where):
    path = os.path.normpath(where)
    return os.path.basename(os.path.dirname(path) if os.path.basename(path) == "ckpt.pt" else path) or path


def arch_of(config):
    found = [name for name, a in ARCHS.items() if (config.layer_pattern, config.attn, config.alibi) ==
             (a["layer_pattern"], a["attn"], a["alibi"])]
    return found[0] if found else "custom"


def load_runs(runs, cfg):
    models = []
    for where in runs:
        model, ckpt = load_model(where, "cpu")
        if cfg.scale_from_L:
            model.set_scale_base(None, start=model.config.block_size)
        trained_id = trained_tokenizer(ckpt)
        label = run_label(where)
        if label in [m["label"] for m in models]:
            label = where  # two runs named alike: the paths tell them apart
        trained = ckpt.get("train_config", {})
        models.append(dict(label=label, model=model.eval(), data_dir=ckpt["data"]["data_dir"],
                           tok=trained_id, arch=arch_of(model.config), pattern=model.config.layer_pattern,
                           retrieval_list=trained.get("retrieval_list", "and"),
                           retrieval_order=trained.get("retrieval_order", "needles")))
    first = models[0]
    for m in models[1:]:
        if not same_tokenizer(m["tok"], first["tok"]):
            raise SystemExit(f"error: {m['label']} and {first['label']} were trained with different tokenizers ("
                             f"{m['tok'][0]} {m['tok'][1]} vs {first['tok'][0]} {first['tok'][1]}): their losses do not compare")
        if m["data_dir"] != first["data_dir"] and not cfg.data_dir:
            raise SystemExit(f"error: {m['label']} and {first['label']} were trained on different datasets "
                             f"({m['data_dir']} vs {first['data_dir']}); pass --data_dir=... to evaluate both on one")
    data_dir = cfg.data_dir or first["data_dir"]
    try:
        meta = load_meta(data_dir)
        tokens, spans = load_split(data_dir, "val")
    except DataError as e:
        raise SystemExit(f"error: {e} (point --data_dir at the dataset the runs were trained on)")
    if not same_tokenizer(tokenizer_id(meta), first["tok"]):
        raise SystemExit(f"error: {data_dir} is tokenized differently ({meta['tokenizer']} {meta['vocab_size']}) "
                         f"from the runs' training data; it is not the dataset they were trained on")
    return models, data_dir, tokens, spans


def eval_lengths(cfg, lengths, L):
    if lengths is not None:
        return lengths
    max_len = cfg.max_len or 32 * L
    if max_len < L:
        raise SystemExit(f"error: --max_len={max_len} is below the training length L={L}")
    return [L << k for k in range((max_len // L).bit_length())]  # L, 2L, 4L, ... <= max_len


def split_documents(cfg, models, spans, data_dir):
    """(report, tune) document indices: with --tune_scale a quarter is set apart for tuning and
    never reported on."""
    has_n = any("N" in m["pattern"] for m in models)  # scaling only touches N layers
    if cfg.scale_from_L and not (cfg.scale_base or cfg.tune_scale):
        raise SystemExit("error: --scale_from_L says where scaling begins; give the bases too (--scale_base or --tune_scale)")
    if (cfg.scale_base or cfg.tune_scale) and not has_n:
        print("note: no run has an N layer, so no scaling applies: each is evaluated once (off)")
    if not (cfg.tune_scale and has_n):
        return np.arange(len(spans)), np.array([], dtype=np.int64)
    if len(spans) < 2:
        raise SystemExit(f"error: --tune_scale needs at least 2 val documents; {data_dir} has {len(spans)}")
    tune, report = tuning_split(spans)
    return report, tune


def all_windows(spans, lengths, cfg, data_dir):
    """{T: window starts}, chosen once per length before any model is evaluated; lengths no
    document holds are skipped with a note. With --tail, every length takes the windows of the
    longest one, cut at their starts: they all end, and are scored, on the same tokens."""
    if cfg.tail > lengths[0]:
        raise SystemExit(f"error: --tail={cfg.tail} is longer than the shortest eval length {lengths[0]}")
    windows, longest_doc = {}, int((spans[:, 1] - spans[:, 0]).max())
    for T in lengths:
        starts = choose_windows(spans, T, cfg.num_windows, cfg.seed)
        if len(starts) == 0:
            print(f"length {T}: skipped, no val document has {T + 1} tokens (the longest has {longest_doc})")
        elif len(starts) < cfg.num_windows:
            print(f"length {T}: only {len(starts)} windows fit (asked for {cfg.num_windows})")
        if len(starts):
            windows[T] = starts
    if not windows:
        raise SystemExit(f"error: no length fits in the val documents of {data_dir} (the longest has {longest_doc} tokens)")
    if cfg.tail:
        T_max = max(windows)
        if len(windows[T_max]) < cfg.num_windows:
            print(f"--tail: every length scores the {len(windows[T_max])} windows of length {T_max}")
        return {T: windows[T_max] + (T_max - T) for T in windows}
    return windows


def tuning_windows(spans, lengths, cfg):
    """(T, starts): windows in the tuning documents at the longest length they reach."""
    for T in reversed(lengths):
        starts = choose_windows(spans, T, cfg.num_windows, cfg.seed + 1)
        if len(starts):
            return T, starts
    raise SystemExit(f"error: no evaluated length fits in the {len(spans)} tuning documents")


def evaluate_loss(m, cfg, tokens, windows, tune, bases, device, autocast, bar):
    """Rows and curves of one run: every setting at every length, and the per-position view of
    the longest length. tune is (T, starts) of the tuning windows, or None."""
    model, rows, curves = m["model"].to(device), [], []
    T_max = max(windows)

    def mean_loss(base, starts, T, name, tail=0):
        bar.set_description(f"{m['label']} {name} T={T}", refresh=False)
        loss = window_losses(model.set_scale_base(base), tokens, starts, T, cfg.batch_size, device, autocast, bar, tail)
        return loss, loss.sum().item() / (len(starts) * len(loss))  # (T or tail,) summed over windows, and the mean

    def row(setting, base, kind, T, loss, n_windows, **extra):
        n_tokens = n_windows * (extra["bin_hi"] - extra["bin_lo"] + 1 if "bin_lo" in extra else cfg.tail or T)
        rows.append(dict(model=m["label"], arch=m["arch"], layer_pattern=m["pattern"], setting=setting,
                         scale_base=base or "", kind=kind, length=T, loss=loss, n_windows=n_windows,
                         n_tokens=n_tokens, **extra))

    def named(base):  # a setting's name, with where its scaling begins (--scale_from_L)
        return setting_name(base, model.config.scale_start)

    settings = [(named(b), b) for b in bases] if "N" in m["pattern"] else [("off", None)]
    if "N" in m["pattern"] and tune is not None:
        T_tune, starts = tune
        best, losses, interior = tune_base(lambda b: mean_loss(b, starts, T_tune, "tune " + named(b), cfg.tail)[1])
        for base, loss in sorted(losses.items(), key=lambda x: x[0] or 0):
            row(named(base), base, "tune", T_tune, loss, len(starts))
        settings.append((f"tuned ({named(best)})", best))
        tune_note = dict(interior=interior, gain_over_off=losses[None] - losses[best])
        print(f"{m['label']}: tuned scale_base {named(best)}, {losses[None] - losses[best]:.4f} below off "
              f"({'inside' if interior else 'at the edge of'} the grid)")
    for name, base in settings:
        means = {}
        for T, starts in windows.items():
            loss, means[T] = mean_loss(base, starts, T, name, cfg.tail)  # (T or tail,), float
            row(name, base, "mean", T, means[T], len(starts), **(tune_note if name.startswith("tuned") else {}))
        # the per-position view of the longest length (the last one: `loss` and `starts` are its)
        bins = [] if cfg.tail else position_bins(T_max)
        per_pos = [(loss[lo - 1:hi].sum().item() / (len(starts) * (hi - lo + 1)), lo, hi) for lo, hi in bins]
        for value, lo, hi in per_pos:  # position p has seen p + 1 tokens
            row(name, base, "position", T_max, value, len(starts), bin_lo=lo, bin_hi=hi)
        run = f"{m['label']} [{m['arch']} {m['pattern']}]"
        curves.append(dict(run=run, setting=name, label=f"{run} {name}", model=m["label"], means=means, per_pos=per_pos))
    m["model"] = model.set_scale_base(None).cpu()  # frees the GPU for the next run
    return rows, curves


def main(argv):
    runs, cfg, lengths, bases, device = parse_args(argv)
    models, data_dir, tokens, spans = load_runs(runs, cfg)
    L = models[0]["model"].config.block_size
    lengths = eval_lengths(cfg, lengths, L)
    if len({m["model"].config.block_size for m in models}) > 1:
        print(f"note: the runs were trained at different lengths; L = {L}, the first run's")
    report_docs, tune_docs = split_documents(cfg, models, spans, data_dir)
    if cfg.task == "retrieval":
        return retrieval.evaluate(models, cfg, data_dir, tokens, spans, report_docs, tune_docs, lengths, L, bases, device)
    windows = all_windows(spans[report_docs], lengths, cfg, data_dir)
    lengths = list(windows)
    tune = tuning_windows(spans[tune_docs], lengths, cfg) if len(tune_docs) else None
    if tune:
        print(f"tuning scale_base at length {tune[0]} on {len(tune[1])} windows of {len(tune_docs)} held-out val documents")
    per_model = sum(len(s) * T for T, s in windows.items())
    total = sum(len(bases) + cfg.tune_scale if "N" in m["pattern"] else 1 for m in models) * per_model
    if tune:  # tuning tries about the grid, "off" and two refinements
        total += sum("N" in m["pattern"] for m in models) * (len(TUNE_GRID) + 3) * len(tune[1]) * tune[0]
    bar = progress(total=total, unit="tok", unit_scale=True)  # counts tokens: long windows cost more
    rows, curves = [], []
    for m in models:
        run_rows, run_curves = evaluate_loss(m, cfg, tokens, windows, tune, bases, device, autocast_for(device), bar)
        rows, curves = rows + run_rows, curves + run_curves
    bar.close()
    write_csv(rows, cfg.out + ".csv", ["model", "arch", "layer_pattern", "setting", "scale_base", "kind", "length",
                                       "bin_lo", "bin_hi", "loss", "n_tokens", "n_windows", "interior", "gain_over_off"])
    print_table(curves, lengths, L, data_dir, len(report_docs), cfg.tail)
    plot(curves, lengths, L, max(windows), cfg.out + ".png")
    print(f"\nwrote {cfg.out}.csv and {cfg.out}.png")
    return dict(lengths=lengths, windows=windows, tune_windows=tune[1] if tune else np.array([], dtype=np.int64),
                tune_docs=tune_docs, report_docs=report_docs, rows=rows, curves=curves)


def print_table(curves, lengths, L, data_dir, n_docs, tail=0):
    scored = f"the last {tail} tokens of each window" if tail else "every token"
    print(f"\nmean val loss by eval length, over {scored} (L = {L}; {data_dir}, {n_docs} documents)\n")
    print("| model | setting | " + " | ".join(f"{T} ({T / L:g}x)" for T in lengths) + " |")
    print("| --- | --- |" + " ---: |" * len(lengths))
    for c in curves:
        print(f"| {c['run']} | {c['setting']} | " + " | ".join(f"{c['means'][T]:.3f}" for T in lengths) + " |")


def plot(curves, lengths, L, T_max, path):
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    per_position = bool(curves[0]["per_pos"])  # none when only each window's tail was scored
    fig, axes = plt.subplots(1, 1 + per_position, figsize=(6 + 6 * per_position, 4.6), squeeze=False)
    ax1, ax2 = axes[0][0], axes[0][-1]
    models = list(dict.fromkeys(c["model"] for c in curves))
    for i, c in enumerate(curves):  # a colour per run, a line style per scaling setting
        color = run_color(models.index(c["model"]), len(models))
        style = ["-", "--", ":", "-."][sum(d["model"] == c["model"] for d in curves[:i]) % 4]
        ax1.plot(lengths, [c["means"][T] for T in lengths], style, color=color, marker="o", ms=4, label=c["label"])
        if per_position:
            x = [math.sqrt(lo * hi) for _, lo, hi in c["per_pos"]]  # geometric centre of each bin
            ax2.plot(x, [v for v, _, _ in c["per_pos"]], style, color=color, marker=".", label=c["label"])
    for ax in {ax1, ax2}:
        ax.set_xscale("log", base=2)
        ax.axvline(L, color="gray", lw=1, ls="--")  # the training length: right of it is extrapolation
        ax.text(L, 0.98, f" L={L}", transform=ax.get_xaxis_transform(), va="top", color="gray", fontsize=8)
        ax.grid(alpha=0.3)
        ax.set_ylabel("val loss (nats/token)")
    # a model that blows up past L would squash every other curve flat: the y range covers what all
    # models do up to L plus a margin, and larger values run off the top (the CSV has them all)
    ax1.set_ylim(top=max(max(c["means"][lengths[0]] for c in curves) + 1.5, ax1.get_ylim()[0] + 0.1))
    ax1.set(xlabel="eval length (tokens)", title="mean loss vs eval length")
    if per_position:
        within_L = [v for c in curves for v, _, hi in c["per_pos"] if hi <= L]
        ax2.set_ylim(top=max(within_L, default=ax2.get_ylim()[1] - 0.5) + 0.5)
        ax2.set(xlabel="context size (tokens seen)", title=f"loss by position at T={T_max} ({T_max / L:g}x L)")
    else:
        ax1.set_title("mean loss (each window's last tokens) vs eval length")
    fig.tight_layout()
    if len(curves) > 8:  # inside, the legend would cover the curves: it goes outside, on the right
        ax2.legend(*ax1.get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax1.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the canvas grows to hold a legend outside
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
