"""
One CSV and one figure from an evaluation that was run in parts (the runs spread over several
GPUs, or a run trained later), as one extrapolate.py call over every run would have written them:

    python results/merge_evals.py results/a_loss.csv results/b_loss.csv --out=results/all_loss
    python results/merge_evals.py a_retrieval.csv b_retrieval.csv --out=all_retrieval --rename=old:new

Loss CSVs (extrapolate.py) and retrieval CSVs (--task=retrieval) are told apart by their columns;
all parts must be of one kind and cover the same lengths. The parts must have been evaluated on
the same windows or examples (the same data, lengths, window count, tail and seed): so each
part after the first must share a run with the parts before it (put one run, such as the model
before conversion, into every part), and a run in several parts must score the same cells the
same in each (checked task by task, to 1e-4; it is then kept once; a task only one part scored
joins the run, so one run's tasks may be evaluated apart). --allow_unshared joins a part that
shares no run (and task), unchecked. --rename relabels a run
(OLD:NEW, repeatable), --L is the training length the figure marks (default: the first length).
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the repository's modules
import extrapolate  # noqa: E402
import retrieval  # noqa: E402
from common import check_out, write_csv  # noqa: E402

# a row is one cell of a run; IDENTITY names the cell, COUNTS (what was scored) must be equal for a
# run in several parts, NUMBERS (what was measured) equal to within TOLERANCE
IDENTITY = ("arch", "layer_pattern", "setting", "scale_base", "kind", "length", "bin_lo", "bin_hi", "task",
            "num_keys", "depth")
COUNTS = ("n_tokens", "n_windows", "n")
NUMBERS = ("loss", "accuracy", "answer_loss", "values_found", "repeated")
TOLERANCE = 1e-4


def read_part(path, rename):
    """(columns, rows, run column) of one part, runs relabelled."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), reader.fieldnames or []
    except OSError as e:
        raise SystemExit(f"error: cannot read {path}: {e.strerror}")
    key = "run" if "task" in columns else "model"
    if key not in columns or "length" not in columns:
        raise SystemExit(f"error: {path} is not a CSV of extrapolate.py (no {key!r} or 'length' column)")
    for row in rows:
        row[key] = rename.get(row[key], row[key])
    return columns, rows, key


def cells(rows):
    """{cell identity: row} of one run's rows."""
    return {tuple(row.get(c, "") for c in IDENTITY): row for row in rows}


def by_task(rows):
    """{task: that task's rows} of one run (loss rows have no task: one group)."""
    groups = {}
    for row in rows:
        groups.setdefault(row.get("task", ""), []).append(row)
    return groups


def agree(first, second):
    """Whether two parts' rows of one run score the same cells the same, task by task: a task both
    parts scored must have the same cells and numbers in each; a task only one scored is not
    compared (an evaluation split by task)."""
    a_tasks, b_tasks = by_task(first), by_task(second)
    for task in a_tasks.keys() & b_tasks.keys():
        a, b = cells(a_tasks[task]), cells(b_tasks[task])
        if a.keys() != b.keys() or any(a[k].get(c) != b[k].get(c) for k in a for c in COUNTS) or any(
                abs(float(a[k][c]) - float(b[k][c])) > TOLERANCE for k in a for c in NUMBERS
                if a[k].get(c) and b[k].get(c)):  # a number one part did not measure (an older CSV's) is not compared
            return False
    return True


def merge(parts, allow_unshared=False):
    """The rows of every part, each run once. A run in several parts must agree where both scored
    it, and every part after the first must share a scored run (and task) with those before it
    (what shows that the parts were evaluated on the same windows or examples), unless
    allow_unshared. A task a part adds to a run seen before joins that run."""
    merged, seen = [], {}  # seen: run -> (path, its rows)
    for i, (path, rows, key) in enumerate(parts):
        by_run = {}
        for row in rows:
            by_run.setdefault(row[key], []).append(row)
        checked = {task for run, run_rows in by_run.items() if run in seen
                   for task in by_task(seen[run][1]).keys() & by_task(run_rows).keys()}  # tasks a run shows alike
        if i and not allow_unshared and not checked:
            raise SystemExit(f"error: {path} shares no run with the parts before it (no run and task scored in both), "
                             f"so nothing shows it was evaluated on the same windows or examples; put one run into "
                             f"every part (or --allow_unshared)")
        earlier = {task for _, kept_rows in seen.values() for task in by_task(kept_rows)}
        unchecked = sorted(earlier & by_task(rows).keys() - checked)
        if i and not allow_unshared and unchecked:
            raise SystemExit(f"error: {path}: no run scored {unchecked[0]} both there and in the parts before it, so "
                             f"nothing shows its examples are the same; put one run into every part (or --allow_unshared)")
        for run, run_rows in by_run.items():
            if run not in seen:
                seen[run] = (path, run_rows)
                merged += run_rows
                continue
            models = [sorted({(r["arch"], r["layer_pattern"]) for r in part}) for part in (seen[run][1], run_rows)]
            if models[0] != models[1]:
                raise SystemExit(f"error: run {run} is {models[0]} in {seen[run][0]} but {models[1]} in {path}: "
                                 f"two models under one name (--rename one of them)")
            if not agree(seen[run][1], run_rows):
                raise SystemExit(f"error: run {run} differs between {seen[run][0]} and {path}: "
                                 f"were they evaluated on the same windows or examples (data, lengths, seed, tail)?")
            kept_tasks = by_task(seen[run][1])
            kept = cells(seen[run][1])
            for task, task_rows in by_task(run_rows).items():
                if task not in kept_tasks:  # a task this part adds to the run
                    seen[run][1].extend(task_rows)
                    merged += task_rows
                    continue
                for cell, row in cells(task_rows).items():  # a number only this part measured joins the kept row
                    for column, value in row.items():
                        if value != "" and kept[cell].get(column, "") == "":
                            kept[cell][column] = value
    return merged


def loss_figure(rows, L, out):
    """extrapolate.py's table and figure from loss rows (each window's tail only or every token)."""
    lengths = sorted({int(r["length"]) for r in rows if r["kind"] == "mean"})
    curves = {}
    for r in rows:
        run = f"{r['model']} [{r['arch']} {r['layer_pattern']}]"
        c = curves.setdefault((run, r["setting"]), dict(run=run, setting=r["setting"], label=f"{run} {r['setting']}",
                                                        model=r["model"], means={}, per_pos=[]))
        if r["kind"] == "mean":
            c["means"][int(r["length"])] = float(r["loss"])
        elif r["kind"] == "position":
            c["per_pos"].append((float(r["loss"]), int(r["bin_lo"]), int(r["bin_hi"])))
    curves = list(curves.values())
    means = [r for r in rows if r["kind"] == "mean"]
    tail = int(means[0]["n_tokens"]) // int(means[0]["n_windows"])  # tokens scored per window
    extrapolate.print_table(curves, lengths, L, "the parts' data", "their", tail if tail < lengths[0] else 0)
    extrapolate.plot(curves, lengths, L, max(lengths), out + ".png")


def retrieval_figure(rows, L, out):
    """retrieval.py's tables and figure from retrieval rows."""
    typed = [dict(r, length=int(r["length"]), depth=float(r["depth"]), accuracy=float(r["accuracy"]),
                  num_keys=int(r["num_keys"]), **{k: float(r.get(k) or "nan") for k in ("values_found", "repeated")})
             for r in rows]
    lengths = sorted({r["length"] for r in typed})
    retrieval.print_tables(typed, lengths, L)
    retrieval.plot(typed, lengths, sorted({r["depth"] for r in typed}), L, out + ".png")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("parts", nargs="+", help="CSVs written by extrapolate.py, all of one kind")
    parser.add_argument("--out", required=True, help="writes OUT.csv and OUT.png")
    parser.add_argument("--rename", action="append", default=[], help="OLD:NEW, a run's new label")
    parser.add_argument("--allow_unshared", action="store_true",
                        help="join a part that shares no run with the parts before it (nothing checks it then)")
    parser.add_argument("--L", type=int, default=0, help="the training length the figure marks (default: the first length)")
    args = parser.parse_args(argv)
    if any(r.count(":") != 1 for r in args.rename):
        raise SystemExit(f"error: --rename takes OLD:NEW, got {next(r for r in args.rename if r.count(':') != 1)!r}")
    rename = dict(r.split(":") for r in args.rename)
    check_out(args.out)
    read = [(path, *read_part(path, rename)) for path in args.parts]
    kinds = {key for _, _, _, key in read}
    if len(kinds) > 1:
        raise SystemExit("error: the parts mix loss and retrieval CSVs; merge each kind on its own")
    lengths = [sorted({int(r["length"]) for r in rows}) for _, _, rows, _ in read]
    if any(x != lengths[0] for x in lengths):
        raise SystemExit(f"error: the parts cover different lengths ({lengths[0]} in {args.parts[0]}); "
                         f"evaluate every part at the same lengths")
    rows = merge([(path, rows, key) for path, _, rows, key in read], args.allow_unshared)
    widest = max((part_columns for _, part_columns, _, _ in read), key=len)  # the newest CSV's order; an older part lacks some
    columns = list(dict.fromkeys(widest + [c for _, part_columns, _, _ in read for c in part_columns]))
    write_csv(rows, args.out + ".csv", columns)
    L = args.L or lengths[0][0]
    (retrieval_figure if kinds == {"run"} else loss_figure)(rows, L, args.out)
    print(f"\nwrote {args.out}.csv and {args.out}.png")


if __name__ == "__main__":
    main(sys.argv[1:])
