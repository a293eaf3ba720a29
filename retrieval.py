"""
Retrieval far beyond the training length: needles hidden in book text (data/tasks.py), asked for
at the end, scored by exact match. `python extrapolate.py RUN... --task=retrieval` runs it.

For every (task, number of keys, length T, depth) the same `trials` examples are built for every
run, from the val documents not held out for tuning, before any model is seen. An example of
T + 1 tokens is read as T tokens of input; it is right when every answer token is the argmax
of the model's prediction at its position, which is what greedy decoding would write (teacher
forcing equals free decoding as long as every token is right). One forward pass per batch, and
only the logits of the last few positions are computed, so 32x L fits in memory.

multivalue asks for all the numbers of one word and names no order, so an answer in any order is
right, as RULER scores it. Teacher forcing checks one order, the needles'; an example it fails
is decoded greedily (the KV cache, a few dozen steps, the failed answers of a batch together)
and is right if the first V numbers written are the V values, in any order. The decoding also
says how a wrong answer is wrong: the CSV's values_found is the share of the V values among
those V numbers, repeated the share of answers that write a number twice (an answer that loses
track of what it wrote). The README's multivalue figures before the any-order rule required the
needles' order.

With --tune_scale, each run with N layers gets one scaling base for every cell, chosen by
scaling.tune_base on the answer loss (mean negative log-likelihood of the answer tokens,
smoother than accuracy) of examples built from the held-out documents at the longest length up
to 32 L. With --scale_from_L the bases are those of the curve begun at L (extrapolate.py).
"""

import math
import re
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F

from common import autocast_for, parse_list, progress, run_color, write_csv
from data.prepare import DataError, load_tokenizer
from data.tasks import DEFAULT_KEYS, TASKS, TaskMaker
from scaling import setting_name, tune_base

BATCH_TOKENS = 65536  # tokens per forward pass
NUMBER = re.compile(r"\d+")
SPARE_TOKENS = 8  # decoded beyond the answer's length: room for an answer written differently (more separators)
Scores = namedtuple("Scores", "correct answer_loss values_found repeated")


def task_list(cfg):
    """[(task, num_keys)] of the --tasks and --num_keys settings (num_keys applies to multikey)."""
    tasks = cfg.tasks.split(",")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"error: unknown task {unknown[0]!r} in --tasks; the tasks are {', '.join(TASKS)}")
    keys = parse_list("num_keys", cfg.num_keys)
    return [(t, k) for t in dict.fromkeys(tasks) for k in (keys if t == "multikey" else [DEFAULT_KEYS[t]])]


@torch.no_grad()
def written_values(model, examples, enc, device, autocast):
    """[(the first V numbers greedy decoding writes after the question, the V values)] of
    multivalue examples whose answers span the same positions (V: the example's values; fewer
    numbers if it writes fewer), as strings: decoded together, one batch through the KV cache (a
    CUDA graph on a GPU), where one example at a time paid every step's launches per example."""
    start, end = examples[0].answer
    assert all(e.answer == (start, end) for e in examples), "one batch decodes answers of one span"
    prompt = torch.from_numpy(np.stack([e.tokens[:start] for e in examples])).to(device)  # (b, start)
    with autocast:
        out = model.generate(prompt, end - start + SPARE_TOKENS, temperature=0)  # (b, start + n)
    pairs = []
    for e, row in zip(examples, out):
        values = NUMBER.findall(enc.decode(e.tokens[start:end].tolist()))
        pairs.append((NUMBER.findall(enc.decode(row[start:].tolist()))[:len(values)], values))
    return pairs


def any_order(model, group, right, enc, device, autocast):
    """(right, values_found, repeated), lists over a batch's examples: a multivalue answer teacher
    forcing found wrong is decoded greedily (written_values, those of one answer span together)
    and is right if its first V numbers are the V values in any order. values_found is the share
    of the V values among them, repeated whether they repeat a number; NaN for the other tasks
    and without the tokenizer enc (then only the needles' order counts)."""
    right, found, repeated = list(right), [float("nan")] * len(group), [float("nan")] * len(group)
    if enc is None:
        return right, found, repeated
    by_span = {}
    for k, e in enumerate(group):
        if e.task == "multivalue":
            found[k], repeated[k] = 1.0, 0.0  # right in the needles' order: nothing to decode
            if not right[k]:
                by_span.setdefault(e.answer, []).append(k)
    for ks in by_span.values():
        for k, (written, values) in zip(ks, written_values(model, [group[k] for k in ks], enc, device, autocast)):
            right[k] = sorted(written) == sorted(values)
            found[k] = len(set(written) & set(values)) / len(values)
            repeated[k] = float(len(set(written)) < len(written))
    return right, found, repeated


def build_examples(maker, cells, depths, trials, tokens, spans, seed):
    """{(task, keys, T, depth): [Example of T + 1 tokens] * trials}, every cell from its own seed
    (keyed by the depth's index in depths, so another --depths list draws other examples)."""
    examples = {}
    for task, keys, T in cells:
        for d, depth in enumerate(depths):
            rng = np.random.default_rng([seed, T, TASKS.index(task), keys, d])
            examples[task, keys, T, depth] = [maker.make(task, T + 1, tokens, spans, rng, depth=depth, num_keys=keys)
                                              for _ in range(trials)]
    return examples


@torch.no_grad()
def score(model, examples, device, autocast, batch_size=8, enc=None):
    """Scores of examples, all of one length T + 1, each field an (n,) numpy array: correct,
    whether every answer token is the argmax of the model's prediction; answer_loss, the mean
    cross-entropy of the answer tokens. With the tokenizer enc, a multivalue answer teacher forcing
    fails is decoded greedily and counts if it holds the V values in any order (any_order, which
    also gives values_found and repeated; both NaN for the other tasks, and without enc)."""
    T = len(examples[0].tokens) - 1
    batch = max(1, min(batch_size, BATCH_TOKENS // T))
    correct, losses, found, repeated = [], [], [], []
    for i in range(0, len(examples), batch):
        group = examples[i:i + batch]
        n_answer = max(e.answer[1] - e.answer[0] for e in group)
        idx = torch.from_numpy(np.stack([e.tokens[:-1] for e in group])).to(device)  # (b, T)
        with autocast:
            logits, _ = model(idx, last=n_answer)  # (b, n_answer, vocab): predictions of the last tokens
        logits = logits.float()
        right = []
        for row, e in enumerate(group):
            m = e.answer[1] - e.answer[0]
            target = torch.from_numpy(e.tokens[e.answer[0]:e.answer[1]]).to(device)  # (m,)
            predicted = logits[row, n_answer - m:]  # (m, vocab), position T - m + k predicts answer token k
            right.append(bool((predicted.argmax(-1) == target).all()))
            losses.append(F.cross_entropy(predicted, target).item())
        right, shares, repeats = any_order(model, group, right, enc, device, autocast)
        correct += right
        found += shares
        repeated += repeats
    return Scores(np.array(correct), np.array(losses), np.array(found), np.array(repeated))


def evaluate(models, cfg, data_dir, tokens, spans, report_docs, tune_docs, lengths, L, bases, device):
    """extrapolate.py --task=retrieval: rows of accuracy per (run, setting, task, keys, length,
    depth); writes cfg.out .csv and .png and prints tables."""
    tasks = task_list(cfg)
    depths = parse_list("depths", cfg.depths, float, lambda d: 0 <= d < 1, "depths in [0, 1)")
    try:
        maker = TaskMaker(load_tokenizer(data_dir))
    except DataError as e:
        raise SystemExit(f"error: {e}")
    for task, keys in tasks:
        need = maker.min_length(task, keys) - 1
        if min(lengths) < need:
            raise SystemExit(f"error: --lengths: {task} with {keys} key(s) needs lengths >= {need}, got {min(lengths)}")
    for m in models:
        learned = (m.get("retrieval_list", "and"), m.get("retrieval_order", "needles"))
        if learned != ("and", "needles") and any(task == "multivalue" for task, _ in tasks):
            print(f"note: {m['label']} learned multivalue answers in the {learned[0]!r} form, in the {learned[1]!r} order, "
                  f"and the examples are in the 'and' form, in the needles' order: its multivalue accuracy counts through "
                  f"the any-order rule, and its answer loss (and a base tuned on it) is taken on those answers")
    cells = [(task, keys, T) for T in lengths for task, keys in tasks]
    examples = build_examples(maker, cells, depths, cfg.trials, tokens, spans[report_docs], cfg.seed)
    tune = None
    if len(tune_docs):  # at the longest length up to 32 L, two examples per task and depth
        T_tune = max([T for T in lengths if T <= 32 * L] or lengths)
        tune_cells = [(task, keys, T_tune) for task, keys in tasks]
        tune = [e for ex in build_examples(maker, tune_cells, depths, 2, tokens, spans[tune_docs], cfg.seed + 1).values()
                for e in ex]
        print(f"tuning scale_base on the answer loss of {len(tune)} examples of length {T_tune} "
              f"from {len(tune_docs)} held-out val documents")
    autocast = autocast_for(device)
    per_setting = sum(len(ex) * T for (_, _, T, _), ex in examples.items())
    n_settings = sum(len(bases) + bool(tune) if "N" in m["pattern"] else 1 for m in models)
    bar = progress(total=n_settings * per_setting, unit="tok", unit_scale=True, desc="retrieval")
    rows = []
    for m in models:
        model = m["model"].to(device)
        def named(base, start=model.config.scale_start):  # a setting's name, with where its scaling begins
            return setting_name(base, start)

        settings = [(named(b), b) for b in bases] if "N" in m["pattern"] else [("off", None)]
        if "N" in m["pattern"] and tune:
            best, losses, interior = tune_base(lambda b: score(model.set_scale_base(b), tune, device, autocast,
                                                               cfg.batch_size)[1].mean())
            settings.append((f"tuned ({named(best)})", best))
            tune_note = dict(interior=interior, gain_over_off=losses[None] - losses[best])  # in answer loss
            print(f"{m['label']}: tuned scale_base {named(best)} (answer loss {losses[best]:.3f}, "
                  f"off {losses[None]:.3f}; {'inside' if interior else 'at the edge of'} the grid)")
        for name, base in settings:
            model.set_scale_base(base)
            for (task, keys, T, depth), ex in examples.items():
                bar.set_description(f"{m['label']} {name} {task} T={T}", refresh=False)
                got = score(model, ex, device, autocast, cfg.batch_size, maker.enc)
                listed = dict(values_found=got.values_found.mean(), repeated=got.repeated.mean()) if task == "multivalue" else {}
                rows.append(dict(run=m["label"], arch=m["arch"], layer_pattern=m["pattern"], task=task, num_keys=keys,
                                 length=T, depth=depth, setting=name, scale_base=base or "",
                                 accuracy=got.correct.mean(), n=len(got.correct), answer_loss=got.answer_loss.mean(),
                                 **listed, **(tune_note if name.startswith("tuned") else {})))
                bar.update(len(ex) * T)
        m["model"] = model.set_scale_base(None).cpu()  # frees the GPU for the next run
    bar.close()
    write_csv(rows, cfg.out + ".csv", ["run", "arch", "layer_pattern", "task", "num_keys", "length", "depth", "setting",
                                       "scale_base", "accuracy", "n", "answer_loss", "values_found", "repeated",
                                       "interior", "gain_over_off"])
    print_tables(rows, lengths, L)
    plot(rows, lengths, depths, L, cfg.out + ".png")
    print(f"\nwrote {cfg.out}.csv and {cfg.out}.png")
    return dict(lengths=lengths, rows=rows, examples=examples, tune_examples=tune)


def mean_accuracy(rows, key="accuracy", **match):
    """The mean of column key (default accuracy) over the rows that match."""
    chosen = [r.get(key, float("nan")) for r in rows if all(r[k] == v for k, v in match.items())]
    return float(np.mean(chosen)) if chosen else float("nan")


def print_tables(rows, lengths, L):
    curves = list(dict.fromkeys((r["run"], r["arch"], r["layer_pattern"], r["setting"]) for r in rows))
    tasks = list(dict.fromkeys((r["task"], r["num_keys"]) for r in rows))
    print(f"\nexact-match accuracy (%) by eval length, mean over depths (L = {L})\n")
    print("| run | setting | task | " + " | ".join(f"{T} ({T / L:g}x)" for T in lengths) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(lengths))
    for run, arch, pattern, setting in curves:
        for task, keys in tasks + [("all", None)]:
            match = dict(run=run, setting=setting) if task == "all" else dict(run=run, setting=setting, task=task, num_keys=keys)
            label = "all tasks" if task == "all" else task + (f" K={keys}" if task == "multikey" else "")
            lines = [(label, "accuracy")]
            if task == "multivalue":  # how its wrong answers are wrong, where they were decoded
                lines += [("multivalue: values found", "values_found"), ("multivalue: a value repeated", "repeated")]
            for what, column in lines:
                cells = [mean_accuracy(rows, length=T, key=column, **match) for T in lengths]
                if column == "accuracy" or any(not math.isnan(a) for a in cells):  # an earlier CSV has no decoding columns
                    print(f"| {run} [{arch} {pattern}] | {setting} | {what} | " + " | ".join(f"{100 * a:.0f}" for a in cells) + " |")


def plot(rows, lengths, depths, L, path):
    """One heatmap per run (accuracy over depth x length, all tasks, at the run's tuned setting if
    it has one, else off), then a line plot of mean accuracy against length for every setting."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    runs = list(dict.fromkeys(r["run"] for r in rows))
    cols = min(4, len(runs))
    heat_rows = math.ceil(len(runs) / cols)
    fig = plt.figure(figsize=(max(4.2 * cols, 8.4), 3.2 * heat_rows + 4.2), layout="constrained")  # room for the legend
    grid = fig.add_gridspec(heat_rows + 1, cols, height_ratios=[1] * heat_rows + [1.3])
    for i, run in enumerate(runs):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        settings = list(dict.fromkeys(r["setting"] for r in rows if r["run"] == run))
        setting = next((s for s in settings if s.startswith("tuned")), settings[0])
        accuracy = np.array([[mean_accuracy(rows, run=run, setting=setting, length=T, depth=d) for T in lengths]
                             for d in depths])  # (depths, lengths)
        image = ax.imshow(accuracy, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [f"{T / L:g}L" for T in lengths], fontsize=7)
        ax.set_yticks(range(len(depths)), [f"{d:g}" for d in depths], fontsize=7)
        pattern = next(r["layer_pattern"] for r in rows if r["run"] == run)
        ax.set_title(f"{run} [{pattern}], {setting}", fontsize=8)
        ax.set_xlabel("eval length", fontsize=7)
        ax.set_ylabel("needle depth", fontsize=7)
    fig.colorbar(image, ax=fig.axes, shrink=0.6, label="exact match, all tasks")
    ax = fig.add_subplot(grid[heat_rows, :])
    for i, run in enumerate(runs):
        settings = list(dict.fromkeys(r["setting"] for r in rows if r["run"] == run))
        for j, setting in enumerate(settings):
            accuracy = [mean_accuracy(rows, run=run, setting=setting, length=T) for T in lengths]
            ax.plot(lengths, accuracy, ["-", "--", ":"][j % 3], color=run_color(i, len(runs)), marker="o", ms=3,
                    label=f"{run} {setting}")
    ax.set_xscale("log", base=2)
    ax.axvline(L, color="gray", lw=1, ls="--")
    ax.text(L, 1.0, f" L={L}", color="gray", fontsize=8, va="top")
    ax.set(xlabel="eval length (tokens)", ylabel="exact match, mean over tasks and depths", ylim=(-0.03, 1.03))
    ax.set_title("mean accuracy against eval length (line style: scale setting)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)
