"""
The summary of results/conversion.sh: for every converted run (named gpt2swanRECIPE-STEPS, or
gpt2swanRECIPE-seedN-STEPS for another data order than train.py's default seed 1337) its loss at
L, 8L and 32L and the gap to swan trained from scratch, against the fraction of the source gpt's
training tokens it used. The figure draws one line per recipe and seed: solid for the default
seed, dotted for the others, in the recipe's colour.

    python results/conversion.py --losses=results/conversion_loss.csv --out=results/conversion

--losses is what extrapolate.py wrote for the runs gpt, swan and the conversions (one length per
column of interest: L, 8L, 32L). Writes OUT.csv and OUT.png.
"""

import argparse
import csv
import os
import re
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the repository's modules
from common import check_out, write_csv  # noqa: E402

COLUMNS = ["model", "recipe", "seed", "steps", "fraction", "loss_L", "loss_8L", "loss_32L", "gap_L", "gap_8L", "gap_32L",
           "rise_32L"]
NAME = re.compile(r"^gpt2swan(?P<recipe>.+?)(?:-seed(?P<seed>\d+))?-(?P<steps>\d+)$")
DEFAULT_SEED = 1337  # train.py's


def read_losses(path):
    """{model: {length: mean loss}} of the rows without dynamic scaling."""
    losses = defaultdict(dict)
    for row in csv.DictReader(open(path)):
        if row["kind"] == "mean" and row["setting"] == "off":
            losses[row["model"]][int(row["length"])] = float(row["loss"])
    return losses


def summarize(losses, source_steps):
    if "swan" not in losses or "gpt" not in losses:
        raise SystemExit("error: the losses need the scratch runs gpt and swan beside the conversions")
    L = min(losses["swan"])
    lengths = {"L": L, "8L": 8 * L, "32L": 32 * L}
    rows = []
    for model, by_length in losses.items():
        match = NAME.match(model)
        if match is None and model not in ("gpt", "swan"):
            continue
        row = dict(model=model)
        if match:
            steps = int(match["steps"])
            row.update(recipe=match["recipe"], seed=int(match["seed"] or DEFAULT_SEED), steps=steps,
                       fraction=steps / source_steps)
        for name, T in lengths.items():
            if T in by_length:
                row[f"loss_{name}"] = by_length[T]
                row[f"gap_{name}"] = by_length[T] - losses["swan"][T]
        if "loss_32L" in row:
            row["rise_32L"] = row["loss_32L"] - row["loss_L"]
        rows.append(row)
    rows.sort(key=lambda r: (r.get("recipe", ""), r.get("steps", 0), r.get("seed", 0)))
    return rows


def print_table(rows):
    print(f"{'model':<36} {'tokens':>6} {'L':>7} {'8L':>7} {'32L':>7} {'gap L':>7} {'gap 8L':>7} {'gap 32L':>7}")
    for r in rows:
        cells = [format(r[k], "+.3f" if k.startswith("gap") else ".3f") if k in r else "-"
                 for k in ("loss_L", "loss_8L", "loss_32L", "gap_L", "gap_8L", "gap_32L")]
        share = f"{100 * r['fraction']:g}%" if "fraction" in r else "-"
        print(f"{r['model']:<36} {share:>6} " + " ".join(f"{c:>7}" for c in cells))


def plot(rows, path):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    gpt = next(r for r in rows if r["model"] == "gpt")
    shares = sorted({100 * r["fraction"] for r in rows if "fraction" in r})
    recipes = list(dict.fromkeys(r["recipe"] for r in rows if "recipe" in r))
    colors = {recipe: f"C{i % 10}" for i, recipe in enumerate(recipes)}
    runs = list(dict.fromkeys((r["recipe"], r["seed"]) for r in rows if "recipe" in r))  # a line per recipe and seed
    for ax, length in zip(axes, ("L", "8L")):
        named = set()  # each recipe named once in the legend, by its first line (its colour)
        for recipe, seed in runs:
            points = sorted((100 * r["fraction"], r[f"gap_{length}"]) for r in rows
                            if (r.get("recipe"), r.get("seed")) == (recipe, seed) and f"gap_{length}" in r)
            default = seed == DEFAULT_SEED
            ax.plot(*zip(*points), marker="o", markersize=6 if default else 4, color=colors[recipe],
                    linestyle="-" if default else ":", label=None if recipe in named else recipe)
            named.add(recipe)
        if any(seed != DEFAULT_SEED for _, seed in runs):
            ax.plot([], [], color="gray", linestyle=":", marker="o", markersize=4, label="other data orders (--seed)")
        ax.axhline(0.03, color="gray", linestyle="-.", label="0.03 nats")
        ax.axhline(0, color="black", linewidth=0.8)
        if length == "L":
            ax.axhline(gpt["gap_L"], color="gray", linestyle="--", label=f"gpt from scratch ({gpt['gap_L']:+.3f})")
        else:
            ax.text(0.02, 0.97, f"gpt from scratch: {gpt['gap_8L']:+.2f} (off the chart)", transform=ax.transAxes,
                    va="top", fontsize=8)
        ax.set(xlabel="% of the gpt's training tokens", ylabel=f"loss - scratch swan's loss at {length}",
               title=f"converted swan at {length}", xscale="log")
        ax.set_xticks(shares, [f"{s:g}" for s in shares])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    axes[0].legend(*[h[-2:] for h in axes[0].get_legend_handles_labels()], fontsize=8)  # the two reference lines
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--losses", default="results/conversion_loss.csv", help="extrapolate.py's CSV of the runs")
    parser.add_argument("--out", default="results/conversion", help="writes OUT.csv and OUT.png")
    parser.add_argument("--source_steps", type=int, default=2000, help="the gpt's training steps (same batch)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.losses):
        raise SystemExit(f"error: {args.losses} does not exist: run extrapolate.py on the runs first")
    rows = summarize(read_losses(args.losses), args.source_steps)
    check_out(args.out)
    write_csv(rows, f"{args.out}.csv", COLUMNS)
    plot(rows, f"{args.out}.png")
    print_table(rows)
    print(f"wrote {args.out}.csv and {args.out}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
