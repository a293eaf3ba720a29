"""
The multivalue A/B (results/multivalue.sh) in one table and one figure: exact match per run,
scale setting, task and length (the depths pooled), each run with its training steps and val
loss (and, for multivalue, the share of the values written and of answers repeating one, where
the evaluation decoded them), and multivalue accuracy against length, one line per run, a panel
per scale setting.

    python results/multivalue.py results/multivalue_*.csv --runs=out-multivalue --out=results/multivalue
    python results/multivalue.py results/logs/multivalue/steps*/multivalue*_*.csv --out=results/multivalue

Each CSV is extrapolate.py --task=retrieval's, of runs named VARIANT-seedS; a run's training log
is RUNS/RUN/log.jsonl, or RUN.jsonl beside its CSV.
"""

import argparse
import collections
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the repository's modules
from common import check_out, write_csv  # noqa: E402

COLORS = {"and": "tab:blue", "commas": "tab:green", "random": "tab:orange", "more": "tab:red", "more8": "tab:purple",
          "k8": "tab:brown", "more-k8": "tab:pink", "k16": "tab:olive", "more-k16": "tab:cyan", "mv-k16": "black",
          "k16-snss": "tab:gray", "k16-ssns": "navy", "k16-16x512": "tab:green", "k16-12x768": "tab:purple"}
STYLES = ["-", "--", ":", "-."]  # by training steps, in increasing order


def training_log(run, csv_path, runs_dir):
    """(steps, val loss at the end) from the run's log.jsonl."""
    places = ([os.path.join(runs_dir, run, "log.jsonl")] if runs_dir else []) + [
        os.path.join(os.path.dirname(csv_path), f"{run}.jsonl")]
    for path in places:
        if os.path.exists(path):
            with open(path) as f:
                evals = [json.loads(line) for line in f if '"val_loss"' in line]
            if not evals:
                raise SystemExit(f"error: {path} holds no evaluation (no val_loss line): did run {run} train?")
            return evals[-1]["iter"], evals[-1]["val_loss"]
    raise SystemExit(f"error: no training log of run {run}: looked for {' and '.join(places)}")


def setting_of(row):
    """A row's setting for the table and the figure's panels: "off", "a=32", "tuned" (whatever
    base each run's tuning found) or "tuned from L" (--scale_from_L: "tuned (a=8 from 512)")."""
    name = row["setting"].split(" (")[0]
    return name + " from L" if name == "tuned" and " from " in row["setting"] else name


def summarize(paths, runs_dir):
    """Rows of accuracy per (run, steps, setting, task, length), the depths pooled. A run may
    come in several CSVs (evaluations with the paper's scaling and with --scale_from_L): a cell
    (run, steps, setting, task, K, length, depth) given twice counts once if both say the same
    (scaling off, say, in both), and is an error if they differ."""
    cells = collections.defaultdict(lambda: [0.0, 0, 0.0, 0.0])  # right, n, values found, repeated (each x n)
    seen = {}  # (run, steps, setting, task, K, length, depth) -> (its numbers, the CSV that gave them)
    for path in paths:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            raise SystemExit(f"error: cannot read {path}: {e.strerror}")
        if not rows or "accuracy" not in rows[0]:
            raise SystemExit(f"error: {path} is not a retrieval CSV of extrapolate.py (no accuracy column)")
        runs_here = {}  # run -> (steps, val loss), from its training log
        for r in rows:
            run = r["run"]
            if run not in runs_here:
                if "-seed" not in run:
                    raise SystemExit(f"error: {path}: run {run!r} is not named VARIANT-seedS, as results/multivalue.sh names runs")
                runs_here[run] = training_log(run, path, runs_dir)
            steps, val_loss = runs_here[run]
            task = r["task"] + (f" K={r['num_keys']}" if r["task"] == "multikey" else "")
            setting = setting_of(r)  # "tuned (a=32)": one panel for every run's tuned base
            cell = (run, steps, setting, task, int(r["length"]), r["depth"])
            numbers = (r["accuracy"], r["n"], r.get("values_found"), r.get("repeated"))
            if cell in seen:
                if seen[cell][0] != numbers:
                    raise SystemExit(f"error: run {run} at {steps} steps, {setting}, {task} at length {r['length']} "
                                     f"depth {r['depth']} differs between {seen[cell][1]} and {path}: two evaluations "
                                     f"of one name (give each run once)")
                continue  # the same evaluation in another CSV
            seen[cell] = (numbers, path)
            key = (run, steps, val_loss, setting, r["scale_base"], task, int(r["length"]))
            n = int(r["n"])
            cells[key][0] += float(r["accuracy"]) * n
            cells[key][1] += n
            cells[key][2] += float(r.get("values_found") or "nan") * n  # NaN where not decoded (an older CSV)
            cells[key][3] += float(r.get("repeated") or "nan") * n
    out = []
    for (run, steps, val_loss, setting, base, task, length), (right, n, found, repeated) in sorted(cells.items()):
        variant, _, seed = run.rpartition("-seed")
        decoded = dict(values_found=round(found / n, 4), repeated=round(repeated / n, 4)) if task == "multivalue" else {}
        out.append(dict(run=run, variant=variant, seed=seed, steps=steps, val_loss=round(val_loss, 4), setting=setting,
                        scale_base=base, task=task, length=length, accuracy=round(right / n, 4), n=n,
                        **{k: "" if v != v else v for k, v in decoded.items()}))  # NaN: not measured, an empty cell
    return out


def print_table(rows, task="multivalue"):
    """Exact match (%) of one task, or with task=None the mean over the tasks (each weighing the
    same), a row per run, steps and setting, a column per length."""
    lengths = sorted({r["length"] for r in rows})
    print(f"\n{task or 'mean over the tasks'}, exact match (%)")
    print("| run | steps | val loss | setting | " + " | ".join(map(str, lengths)) + " |")
    print("| --- | ---: | ---: | --- |" + " ---: |" * len(lengths))
    lines = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        if task is None or r["task"] == task:
            setting = r["setting"] + (f" (a={float(r['scale_base']):.3g})" if r["setting"].startswith("tuned") else "")
            lines[r["run"], r["steps"], r["val_loss"], setting][r["length"]].append(r["accuracy"])
    for (run, steps, val_loss, setting), cells in lines.items():
        means = {n: f"{100 * sum(a) / len(a):.0f}" for n, a in cells.items()}
        print(f"| {run} | {steps} | {val_loss:.3f} | {setting} | " + " | ".join(means.get(n, "") for n in lengths) + " |")


def plot(rows, path, task="multivalue"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r["task"] == task]
    settings = sorted({r["setting"] for r in rows}, key=lambda x: (x != "off", x.startswith("tuned"), x))  # off, bases, tuned
    steps = sorted({r["steps"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings) + 2.6, 3.8), sharey=True, squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for run, run_steps, variant, seed in dict.fromkeys((r["run"], r["steps"], r["variant"], r["seed"]) for r in rows):
            line = sorted((r["length"], r["accuracy"]) for r in rows
                          if r["run"] == run and r["steps"] == run_steps and r["setting"] == setting)
            ax.plot([x for x, _ in line], [100 * y for _, y in line], color=COLORS.get(variant, "gray"),
                    ls=STYLES[steps.index(run_steps) % len(STYLES)], marker="os^vD"[seeds.index(seed) % 5], ms=3,
                    label=f"{run}, {run_steps} steps")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-3, 103)
        titles = {"off": "scaling off", "tuned": "tuned base", "tuned from L": "tuned base, scaling from L"}
        ax.set_title(titles.get(setting, f"scaling {setting}"))
        ax.set_xlabel("eval length (tokens)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{task} exact match (%)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{task} past L: a line per run (its variant: results/multivalue.sh)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csvs", nargs="+", help="extrapolate.py --task=retrieval CSVs of the A/B's runs")
    parser.add_argument("--runs", default="", help="the folder holding the run folders (RUN/log.jsonl)")
    parser.add_argument("--out", default="results/multivalue", help="writes OUT.csv and OUT.png")
    parser.add_argument("--task", default="multivalue", help='the task of the figure and the first table, e.g. "multikey K=16"')
    args = parser.parse_args(argv)
    check_out(args.out)
    rows = summarize(args.csvs, args.runs)
    tasks = sorted({r["task"] for r in rows})
    if args.task not in tasks:
        raise SystemExit(f"error: --task={args.task!r}: no run was evaluated on it; the tasks are {', '.join(tasks)}")
    write_csv(rows, f"{args.out}.csv", ["run", "variant", "seed", "steps", "val_loss", "setting", "scale_base", "task",
                                        "length", "accuracy", "n", "values_found", "repeated"])
    plot(rows, f"{args.out}.png", args.task)
    print_table(rows, args.task)
    print_table(rows, task=None)
    print(f"wrote {args.out}.csv and {args.out}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
