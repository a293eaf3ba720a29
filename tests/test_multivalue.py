"""results/multivalue.py: the multivalue A/B's per-run CSVs pooled over depths into one table,
each run with its steps and val loss from its training log, and one figure."""

import csv
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results"))
import multivalue  # noqa: E402
from common import write_csv  # noqa: E402

COLUMNS = ["run", "arch", "layer_pattern", "task", "num_keys", "length", "depth", "setting", "scale_base",
           "accuracy", "n", "answer_loss", "interior", "gain_over_off"]


def eval_csv(folder, run, cells):
    """cells: {(task, setting, base, length, depth): (accuracy, n)}"""
    rows = [dict(run=run, arch="swan", layer_pattern="NSSS", task=task, num_keys=4, length=T, depth=d, setting=setting,
                 scale_base=base, accuracy=a, n=n, answer_loss=0.1) for (task, setting, base, T, d), (a, n) in cells.items()]
    path = os.path.join(folder, f"multivalue_{run}.csv")
    write_csv(rows, path, COLUMNS)
    return path


def training_log(path, steps, val_loss):
    with open(path, "w") as f:
        f.write(json.dumps({"iter": 0, "val_loss": 9.0}) + "\n")
        f.write(json.dumps({"iter": steps, "loss": 3.0, "lr": 1e-4}) + "\n")
        f.write(json.dumps({"iter": steps, "val_loss": val_loss}) + "\n")


def test_depths_pool_weighted_by_examples_and_logs_give_steps(tmp_path, capsys):
    folder = str(tmp_path)
    a = eval_csv(folder, "and-seed7", {("multivalue", "off", "", 67, 0.0): (1.0, 3), ("multivalue", "off", "", 67, 0.5): (0.0, 1),
                                       ("multivalue", "tuned (a=45.2548)", 45.2548, 67, 0.0): (0.5, 4),
                                       ("multikey", "off", "", 67, 0.0): (0.25, 4)})
    b = eval_csv(folder, "random-seed7", {("multivalue", "off", "", 67, 0.0): (0.75, 4), ("multivalue", "off", "", 134, 0.0): (0.5, 2)})
    training_log(os.path.join(folder, "and-seed7.jsonl"), 2000, 4.0871)
    os.makedirs(os.path.join(folder, "runs", "random-seed7"))
    training_log(os.path.join(folder, "runs", "random-seed7", "log.jsonl"), 4000, 4.16)
    out = os.path.join(folder, "summary")
    multivalue.main([a, b, f"--runs={os.path.join(folder, 'runs')}", f"--out={out}"])
    with open(out + ".csv", newline="") as f:
        rows = {(r["run"], r["setting"], r["task"], r["length"]): r for r in csv.DictReader(f)}
    off = rows["and-seed7", "off", "multivalue", "67"]
    assert float(off["accuracy"]) == pytest.approx(0.75) and off["n"] == "4"  # (3 x 1.0 + 1 x 0.0) / 4
    assert (off["variant"], off["seed"], off["steps"], off["val_loss"]) == ("and", "7", "2000", "4.0871")
    assert off["values_found"] == off["repeated"] == ""  # these CSVs hold no decoding columns
    assert rows["and-seed7", "tuned", "multivalue", "67"]["scale_base"] == "45.2548"
    assert float(rows["and-seed7", "off", "multikey K=4", "67"]["accuracy"]) == pytest.approx(0.25)
    assert rows["random-seed7", "off", "multivalue", "134"]["steps"] == "4000"  # from RUNS/RUN/log.jsonl
    assert os.path.getsize(out + ".png") > 0
    printed = capsys.readouterr().out
    assert "| and-seed7 | 2000 | 4.087 | off | 75 |  |" in printed
    assert "| and-seed7 | 2000 | 4.087 | tuned (a=45.3) | 50 |  |" in printed
    means = printed.split("mean over the tasks")[1]
    assert "| and-seed7 | 2000 | 4.087 | off | 50 |  |" in means  # (75 + 25) / 2, multivalue and multikey alike
    multivalue.main([a, b, f"--runs={os.path.join(folder, 'runs')}", f"--out={out}_mk", "--task=multikey K=4"])
    assert "multikey K=4, exact match (%)\n" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--task='passkey': no run was evaluated on it; the tasks are multikey K=4, multivalue"):
        multivalue.main([a, b, f"--runs={os.path.join(folder, 'runs')}", f"--out={out}_x", "--task=passkey"])


def test_decoding_columns_pool_like_accuracy(tmp_path):
    folder = str(tmp_path)
    path = os.path.join(folder, "multivalue_random-seed1.csv")
    rows = [dict(run="random-seed1", arch="swan", layer_pattern="NSSS", task="multivalue", num_keys=4, length=67, depth=d,
                 setting="off", scale_base="", accuracy=a, n=n, answer_loss=0.1, values_found=f, repeated=r)
            for d, a, n, f, r in ((0.0, 0.5, 2, 0.875, 0.5), (0.5, 1.0, 6, 1.0, 0.0))]
    write_csv(rows, path, COLUMNS[:12] + ["values_found", "repeated"] + COLUMNS[12:])
    training_log(os.path.join(folder, "random-seed1.jsonl"), 2000, 4.0)
    multivalue.main([path, f"--out={tmp_path / 'summary'}"])
    with open(str(tmp_path / "summary.csv"), newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["accuracy"]) == pytest.approx(0.875)  # (2 x 0.5 + 6 x 1.0) / 8
    assert float(row["values_found"]) == pytest.approx((2 * 0.875 + 6) / 8, abs=1e-4)  # rounded to 4 digits
    assert float(row["repeated"]) == pytest.approx(2 * 0.5 / 8)


def test_a_run_without_training_log_is_named(tmp_path):
    path = eval_csv(str(tmp_path), "and-seed3", {("multivalue", "off", "", 67, 0.0): (1.0, 2)})
    with pytest.raises(SystemExit, match=r"no training log of run and-seed3: looked for .*and-seed3.jsonl") as e:
        multivalue.main([path, f"--out={tmp_path / 'x'}"])
    assert "\n" not in str(e.value)


def test_bad_runs_and_logs_get_one_line(tmp_path):
    folder = str(tmp_path)
    cell = {("multivalue", "off", "", 67, 0.0): (1.0, 2)}
    unnamed = eval_csv(folder, "swan", cell)
    with pytest.raises(SystemExit, match=r"run 'swan' is not named VARIANT-seedS"):
        multivalue.main([unnamed, f"--out={tmp_path / 'x'}"])
    untrained = eval_csv(folder, "and-seed4", cell)
    with open(os.path.join(folder, "and-seed4.jsonl"), "w") as f:
        f.write(json.dumps({"iter": 10, "loss": 5.0}) + "\n")
    with pytest.raises(SystemExit, match=r"and-seed4.jsonl holds no evaluation \(no val_loss line\)"):
        multivalue.main([untrained, f"--out={tmp_path / 'x'}"])
    training_log(os.path.join(folder, "and-seed4.jsonl"), 2000, 4.0)
    os.makedirs(os.path.join(folder, "again"))
    twice = eval_csv(os.path.join(folder, "again"), "and-seed4", {("multivalue", "off", "", 67, 0.0): (0.5, 2)})
    training_log(os.path.join(folder, "again", "and-seed4.jsonl"), 2000, 4.0)
    with pytest.raises(SystemExit, match=r"run and-seed4 at 2000 steps, off, multivalue at length 67 depth 0.0 "
                                         r"differs between .* two evaluations of one name") as e:
        multivalue.main([untrained, twice, f"--out={tmp_path / 'x'}"])
    assert "\n" not in str(e.value)


def test_paper_and_from_L_evaluations_of_one_run_join(tmp_path, capsys):
    # the same run evaluated twice, with the paper's scaling and with --scale_from_L: "off" is in
    # both and counts once; each tuned base gets its own setting
    folder = str(tmp_path)
    off = {("multivalue", "off", "", 67, 0.0): (0.5, 4)}
    paper = eval_csv(folder, "more-seed2", {**off, ("multivalue", "tuned (a=45.2548)", 45.2548, 67, 0.0): (0.25, 4)})
    os.makedirs(os.path.join(folder, "from_L"))
    from_L = eval_csv(os.path.join(folder, "from_L"), "more-seed2",
                      {**off, ("multivalue", "tuned (a=11.3137 from 512)", 11.3137, 67, 0.0): (1.0, 4)})
    training_log(os.path.join(folder, "more-seed2.jsonl"), 2000, 4.1)
    training_log(os.path.join(folder, "from_L", "more-seed2.jsonl"), 2000, 4.1)
    multivalue.main([paper, from_L, f"--out={tmp_path / 'summary'}"])
    with open(str(tmp_path / "summary.csv"), newline="") as f:
        rows = {r["setting"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"off", "tuned", "tuned from L"}
    assert (rows["off"]["n"], rows["tuned"]["accuracy"], rows["tuned from L"]["accuracy"]) == ("4", "0.25", "1.0")
    assert rows["tuned from L"]["scale_base"] == "11.3137"
    assert "| more-seed2 | 2000 | 4.100 | tuned from L (a=11.3) | 100 |" in capsys.readouterr().out
