"""
The summary of results/multigpu.sh, from its runs' log.jsonl: per (arch, processes N) the
training tokens/s, the scaling efficiency (tokens/s at N over N x tokens/s at 1), the peak GPU
memory of a process, and how far each iteration's loss is from the N = 1 run's.

    python results/multigpu.py --runs=out-multigpu --out=results/multigpu swan-n1 swan-n2 swan-n2-resumed-n1

A run is named ARCH-nN. ARCH-nN-repeat is ARCH-nN once more: how far two identical runs drift
apart, the floor for every other comparison. ARCH-nA-resumed-nB was stopped halfway on A
processes and resumed on B; it is compared with the uninterrupted ARCH-nA. Writes OUT.csv and
OUT.png.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the repository's modules
from common import check_out, write_csv  # noqa: E402

COLUMNS = ["run", "arch", "nproc", "iters", "tokens_per_s", "tokens_per_s_per_process", "efficiency", "peak_mem_gib",
           "compared_with", "max_rel_loss_diff", "final_loss", "final_rel_loss_diff", "final_val_loss",
           "final_rel_val_diff"]
NAME = re.compile(r"^(?P<arch>[a-z]+)-n(?P<first>\d+)(-resumed-n(?P<then>\d+)|(?P<repeat>-repeat))?$")


def read_run(folder):
    """(losses {iter: loss}, val {iter: val_loss}, tokens/s of each step, peak memory or None)."""
    rows = [json.loads(line) for line in open(os.path.join(folder, "log.jsonl"))]
    losses = {r["iter"]: r["loss"] for r in rows if "loss" in r}
    val = {r["iter"]: r["val_loss"] for r in rows if "val_loss" in r}
    rates = [(r["iter"], r["tokens_per_s"]) for r in rows if "tokens_per_s" in r]
    peaks = [r["peak_mem_gib"] for r in rows if "peak_mem_gib" in r]
    return losses, val, rates, max(peaks) if peaks else None


def steady_rate(rates):
    """The median tokens/s of the second half of the steps: the first ones compile and warm up."""
    last = max(it for it, _ in rates)
    return float(np.median([r for it, r in rates if it > last / 2]))


def rel_diffs(a, b):  # {iter: |a - b| / |b|} over the iterations both logged
    return {it: abs(a[it] - b[it]) / abs(b[it]) for it in sorted(set(a) & set(b))}


def summarize(runs_dir, names):
    runs = {}
    for name in names:
        match = NAME.match(name)
        if not match:
            raise SystemExit(f"error: run name {name!r} is not ARCH-nN, ARCH-nN-repeat or ARCH-nA-resumed-nB")
        if not os.path.exists(os.path.join(runs_dir, name, "log.jsonl")):
            raise SystemExit(f"error: {os.path.join(runs_dir, name)} has no log.jsonl: did its training run?")
        runs[name] = (match, *read_run(os.path.join(runs_dir, name)))
    rows, curves = [], {}
    for name, (match, losses, val, rates, peak) in runs.items():
        arch, n = match["arch"], int(match["first"])
        resumed, repeat = match["then"] is not None, match["repeat"] is not None
        base = f"{arch}-n{n}" if resumed or repeat else f"{arch}-n1"
        row = dict(run=name, arch=arch, nproc=f"{n}->{match['then']}" if resumed else n, iters=max(losses),
                   peak_mem_gib=peak, final_loss=losses[max(losses)], final_val_loss=val.get(max(val)))
        if not resumed and not repeat:
            row["tokens_per_s"] = steady_rate(rates)
            row["tokens_per_s_per_process"] = row["tokens_per_s"] / n
        if base in runs and base != name:
            _, base_losses, base_val, _, _ = runs[base]
            diffs = rel_diffs(losses, base_losses)
            curves[name] = diffs
            last = max(diffs)
            row.update(compared_with=base, max_rel_loss_diff=max(diffs.values()), final_rel_loss_diff=diffs[last],
                       final_rel_val_diff=rel_diffs(val, base_val).get(max(val)))
        rows.append(row)
    for row in rows:  # efficiency against the same arch on one process
        one = next((r for r in rows if r["arch"] == row["arch"] and r["nproc"] == 1), None)
        if "tokens_per_s" in row and one is not None:
            row["efficiency"] = row["tokens_per_s"] / (row["nproc"] * one["tokens_per_s"])
    return rows, curves


def print_table(rows):
    print(f"{'run':<24} {'N':>5} {'tokens/s':>10} {'eff.':>6} {'peak GiB':>8} {'max rel diff':>12} "
          f"{'final loss':>10} {'final val':>9}")
    for r in rows:
        def fmt(key, spec):
            return format(r[key], spec) if r.get(key) is not None else "-"
        print(f"{r['run']:<24} {str(r['nproc']):>5} {fmt('tokens_per_s', ',.0f'):>10} {fmt('efficiency', '.3f'):>6} "
              f"{fmt('peak_mem_gib', '.2f'):>8} {fmt('max_rel_loss_diff', '.2e'):>12} {fmt('final_loss', '.4f'):>10} "
              f"{fmt('final_val_loss', '.4f'):>9}")


def plot(rows, curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, diffs in curves.items():
        its = list(diffs)
        left.plot(its, [max(diffs[i], 1e-9) for i in its], label=name)
    left.axhline(2e-3, color="gray", linestyle=":", label="2e-3")
    left.set(yscale="log", xlabel="iteration", ylabel="|loss - loss of the compared run| / loss",
             title="training loss against one process\n(repeat: the same run again; resumed: against its uninterrupted run)")
    left.legend(fontsize=8)
    for arch in dict.fromkeys(r["arch"] for r in rows):
        measured = sorted((r["nproc"], r["tokens_per_s"]) for r in rows if r["arch"] == arch and "tokens_per_s" in r)
        ns, rates = zip(*measured)
        line, = right.plot(ns, rates, marker="o", label=arch)
        if ns[0] == 1:
            right.plot(ns, [n * rates[0] for n in ns], linestyle="--", color=line.get_color(), alpha=0.5,
                       label=f"{arch}: N x one process")
    right.set(xlabel="processes (GPUs)", ylabel="training tokens/s", title="throughput, same global batch")
    right.set_xticks(sorted({r["nproc"] for r in rows if isinstance(r["nproc"], int)}))
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--runs", default="out-multigpu", help="the folder holding the run folders")
    parser.add_argument("--out", default="results/multigpu", help="writes OUT.csv and OUT.png")
    parser.add_argument("names", nargs="+", help="run folder names: ARCH-nN, ARCH-nN-repeat or ARCH-nA-resumed-nB")
    args = parser.parse_args(argv)
    rows, curves = summarize(args.runs, args.names)
    check_out(args.out)
    write_csv(rows, f"{args.out}.csv", COLUMNS)
    plot(rows, curves, f"{args.out}.png")
    print_table(rows)
    print(f"wrote {args.out}.csv and {args.out}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
