"""results/merge_evals.py: parts of an evaluation joined into one CSV and figure, a run shared by
the parts checked to agree and kept once."""

import csv
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results"))
import merge_evals  # noqa: E402
from common import write_csv  # noqa: E402

LOSS_COLUMNS = ["model", "arch", "layer_pattern", "setting", "scale_base", "kind", "length", "bin_lo", "bin_hi",
                "loss", "n_tokens", "n_windows", "interior", "gain_over_off"]
RETRIEVAL_COLUMNS = ["run", "arch", "layer_pattern", "task", "num_keys", "length", "depth", "setting", "scale_base",
                     "accuracy", "n", "answer_loss", "interior", "gain_over_off"]
LENGTHS = (67, 134)


def loss_rows(run, losses, pattern="G"):
    # each window's last 5 tokens scored, 3 windows: n_tokens 15
    return [dict(model=run, arch="gpt" if pattern == "G" else "swan", layer_pattern=pattern, setting="off",
                 kind="mean", length=T, loss=x, n_tokens=15, n_windows=3) for T, x in zip(LENGTHS, losses)]


def retrieval_rows(run, accuracies):
    return [dict(run=run, arch="swan", layer_pattern="NSSS", task="passkey", num_keys=1, length=T, depth=d,
                 setting="off", accuracy=a, n=4, answer_loss=0.5)
            for T, row in zip(LENGTHS, accuracies) for d, a in zip((0.0, 0.5), row)]


def write(tmp_path, name, rows, columns):
    path = str(tmp_path / name)
    write_csv(rows, path, columns)
    return path


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_loss_parts_join_with_the_shared_run_once_and_renamed(tmp_path, capsys):
    a = write(tmp_path, "a.csv", loss_rows("base", [3.5, 7.25]) + loss_rows("one", [3.0, 3.125], "NSSS"), LOSS_COLUMNS)
    b = write(tmp_path, "b.csv", loss_rows("base", [3.5, 7.25]) + loss_rows("old", [2.75, 3.5], "NSSS"), LOSS_COLUMNS)
    out = str(tmp_path / "all")
    merge_evals.main([a, b, f"--out={out}", "--rename=old:new"])
    rows = read(out + ".csv")
    assert [r["model"] for r in rows] == ["base", "base", "one", "one", "new", "new"]
    assert [float(r["loss"]) for r in rows] == [3.5, 7.25, 3.0, 3.125, 2.75, 3.5]
    assert list(rows[0]) == LOSS_COLUMNS
    assert os.path.getsize(out + ".png") > 1000
    printed = capsys.readouterr().out
    assert "the last 5 tokens of each window (L = 67;" in printed  # the tail, from n_tokens / n_windows
    assert "| new [swan NSSS] | off | 2.750 | 3.500 |" in printed


def test_a_shared_run_that_differs_between_parts_is_refused(tmp_path):
    a = write(tmp_path, "a.csv", loss_rows("base", [3.5, 7.25]), LOSS_COLUMNS)
    b = write(tmp_path, "b.csv", loss_rows("base", [3.5, 7.2503]), LOSS_COLUMNS)  # 3e-4 apart: other windows
    with pytest.raises(SystemExit, match=r"run base differs between .*a.csv and .*b.csv"):
        merge_evals.main([a, b, f"--out={tmp_path / 'all'}"])
    c = write(tmp_path, "c.csv", loss_rows("base", [3.5, 7.25005]), LOSS_COLUMNS)  # 5e-5: within the tolerance
    merge_evals.main([a, c, f"--out={tmp_path / 'all'}"])
    assert len(read(str(tmp_path / "all.csv"))) == 2


def test_parts_must_share_a_run_and_agree_cell_by_cell(tmp_path):
    out = f"--out={tmp_path / 'all'}"
    base = loss_rows("base", [3.5, 7.25])
    a = write(tmp_path, "a.csv", base, LOSS_COLUMNS)
    alone = write(tmp_path, "alone.csv", loss_rows("other", [3.0, 3.25]), LOSS_COLUMNS)
    with pytest.raises(SystemExit, match=r"alone.csv shares no run with the parts before it"):
        merge_evals.main([a, alone, out])
    merge_evals.main([a, alone, out, "--allow_unshared"])
    assert [r["model"] for r in read(str(tmp_path / "all.csv"))] == ["base", "base", "other", "other"]
    reordered = write(tmp_path, "reordered.csv", base[::-1], LOSS_COLUMNS)  # the same cells in another order
    merge_evals.main([a, reordered, out])
    assert len(read(str(tmp_path / "all.csv"))) == 2
    other_tail = [dict(r, n_tokens=21, n_windows=3) for r in base]  # the same losses over other tails (7 tokens)
    relabelled = [dict(r, setting="tuned (a=64)") for r in base]  # the same numbers in other cells
    for rows in (other_tail, relabelled):
        with pytest.raises(SystemExit, match="run base differs between"):
            merge_evals.main([a, write(tmp_path, "b.csv", rows, LOSS_COLUMNS), out])
    needles = write(tmp_path, "n1.csv", retrieval_rows("base", [(1.0, 0.5), (0.25, 0.0)]), RETRIEVAL_COLUMNS)
    other = write(tmp_path, "n2.csv", retrieval_rows("base", [(1.0, 0.5), (0.25, 0.25)]), RETRIEVAL_COLUMNS)
    with pytest.raises(SystemExit, match="run base differs between"):
        merge_evals.main([needles, other, out])


def test_retrieval_parts_join_and_draw(tmp_path, capsys):
    a = write(tmp_path, "a.csv", retrieval_rows("base", [(1.0, 0.5), (0.25, 0.0)]), RETRIEVAL_COLUMNS)
    b = write(tmp_path, "b.csv", retrieval_rows("base", [(1.0, 0.5), (0.25, 0.0)])
              + retrieval_rows("two", [(1.0, 1.0), (0.75, 0.25)]), RETRIEVAL_COLUMNS)
    out = str(tmp_path / "all")
    merge_evals.main([a, b, f"--out={out}", "--L=67"])
    rows = read(out + ".csv")
    assert [(r["run"], float(r["accuracy"])) for r in rows][4:] == [("two", 1.0), ("two", 1.0), ("two", 0.75),
                                                                     ("two", 0.25)]
    assert len(rows) == 8
    assert os.path.getsize(out + ".png") > 1000
    assert "| two [swan NSSS] | off | passkey | 100 | 50 |" in capsys.readouterr().out  # means over the two depths


def test_multivalue_decoding_columns_join_are_checked_and_printed(tmp_path, capsys):
    columns = RETRIEVAL_COLUMNS[:12] + ["values_found", "repeated"] + RETRIEVAL_COLUMNS[12:]

    def multivalue(run, found):
        return [dict(row, task="multivalue", num_keys=4, values_found=f, repeated=0.25)
                for row, f in zip(retrieval_rows(run, [(0.5, 0.5), (0.0, 0.0)]), found)]

    older = write(tmp_path, "older.csv", [{k: v for k, v in r.items() if k not in ("values_found", "repeated")}
                                          for r in multivalue("base", [0] * 4)], RETRIEVAL_COLUMNS)
    newer = write(tmp_path, "newer.csv", multivalue("base", [0.75, 0.75, 0.5, 0.25]) + multivalue("two", [1, 1, 0.5, 0.5]),
                  columns)
    out = str(tmp_path / "all")
    merge_evals.main([older, newer, f"--out={out}", "--L=67"])  # a column the older part lacks is not compared
    rows = read(out + ".csv")
    assert list(rows[0]) == columns  # the newer part's order
    assert [r["values_found"] for r in rows if r["run"] == "base"] == ["0.75", "0.75", "0.5", "0.25"]  # joined in
    printed = capsys.readouterr().out
    assert "| two [swan NSSS] | off | multivalue: values found | 100 | 50 |" in printed
    assert "| two [swan NSSS] | off | multivalue: a value repeated | 25 | 25 |" in printed
    differs = write(tmp_path, "differs.csv", multivalue("base", [0.75, 0.75, 0.5, 0.5]), columns)
    with pytest.raises(SystemExit, match=r"run base differs between .*newer.csv and .*differs.csv"):
        merge_evals.main([newer, differs, f"--out={out}"])


def test_a_run_evaluated_task_by_task_joins_and_shared_tasks_are_checked(tmp_path):
    out = str(tmp_path / "all")
    passkey = retrieval_rows("base", [(1.0, 0.5), (0.25, 0.0)])
    multivalue = [dict(r, task="multivalue", num_keys=4) for r in retrieval_rows("base", [(0.5, 0.0), (0.0, 0.0)])]
    a = write(tmp_path, "a.csv", passkey, RETRIEVAL_COLUMNS)
    only_new = write(tmp_path, "b.csv", multivalue, RETRIEVAL_COLUMNS)  # nothing in common: nothing checks it
    with pytest.raises(SystemExit, match=r"b.csv shares no run with the parts before it \(no run and task"):
        merge_evals.main([a, only_new, f"--out={out}"])
    merge_evals.main([a, only_new, f"--out={out}", "--allow_unshared", "--L=67"])
    rows = read(out + ".csv")
    assert [(r["task"], float(r["accuracy"])) for r in rows] == [("passkey", 1.0), ("passkey", 0.5), ("passkey", 0.25),
                                                                 ("passkey", 0.0), ("multivalue", 0.5),
                                                                 ("multivalue", 0.0), ("multivalue", 0.0),
                                                                 ("multivalue", 0.0)]
    both = write(tmp_path, "c.csv", passkey + multivalue, RETRIEVAL_COLUMNS)  # passkey shared and equal: checked
    merge_evals.main([a, both, f"--out={out}", "--L=67"])
    assert len(read(out + ".csv")) == 8
    changed = [dict(r, accuracy=0.75) if r["depth"] == 0.5 and r["length"] == 67 else r for r in passkey]
    differs = write(tmp_path, "d.csv", changed + multivalue, RETRIEVAL_COLUMNS)
    with pytest.raises(SystemExit, match=r"run base differs between .*a.csv and .*d.csv"):
        merge_evals.main([a, differs, f"--out={out}"])
    # another run's multivalue, with nothing scored both ways to show its examples are the same
    anchored = write(tmp_path, "e.csv", passkey + [dict(r, run="two") for r in multivalue], RETRIEVAL_COLUMNS)
    merge_evals.main([both, anchored, f"--out={out}", "--allow_unshared", "--L=67"])
    with pytest.raises(SystemExit, match=r"e.csv: no run scored multivalue both there and in the parts before it"):
        merge_evals.main([both, anchored, f"--out={out}"])
    # one name, two models: a gpt's multivalue is not the swan's
    other_model = write(tmp_path, "f.csv", [dict(r, run="one") for r in passkey]
                        + [dict(r, arch="gpt", layer_pattern="G") for r in multivalue], RETRIEVAL_COLUMNS)
    first = write(tmp_path, "g.csv", passkey + [dict(r, run="one") for r in passkey], RETRIEVAL_COLUMNS)
    with pytest.raises(SystemExit, match=r"run base is \[\('swan', 'NSSS'\)\] in .*g.csv but \[\('gpt', 'G'\)\]"):
        merge_evals.main([first, other_model, f"--out={out}"])


def test_bad_input_gets_one_line(tmp_path):
    loss = write(tmp_path, "loss.csv", loss_rows("base", [3.5, 7.25]), LOSS_COLUMNS)
    needles = write(tmp_path, "needles.csv", retrieval_rows("base", [(1.0, 0.5), (0.25, 0.0)]), RETRIEVAL_COLUMNS)
    shorter = write(tmp_path, "shorter.csv", loss_rows("x", [3.5, 7.25])[:1], LOSS_COLUMNS)
    other = write(tmp_path, "other.csv", [dict(a=1)], ["a"])
    out = f"--out={tmp_path / 'all'}"
    cases = [([loss, needles, out], "mix loss and retrieval"),
             ([loss, shorter, out], r"different lengths \(\[67, 134\] in"),
             ([loss, other, out], "not a CSV of extrapolate.py"),
             ([loss, str(tmp_path / "missing.csv"), out], "cannot read"),
             ([loss, out, "--rename=a"], "--rename takes OLD:NEW, got 'a'")]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message):
            merge_evals.main(argv)
