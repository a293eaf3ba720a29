"""results/multigpu.sh on CPU processes (gloo): the same script and code path as on GPUs, at a
tiny size. One and two processes train the same losses, a run stopped halfway on two and resumed
on one ends where the uninterrupted run ends, and the summary writes its CSV and figure."""

import csv
import os
import subprocess
import sys

import pytest
import torch

import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def summary(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("multigpu")
    env = dict(os.environ, PYTHON=sys.executable, RUNS=str(out / "runs"), PREFIX=str(out / "multigpu"), DEVICE="cpu",
               NPROCS="1 2", ARCHS="swan", BLOCK="32", GLOBAL_BATCH="4", ITERS="8",
               TRAIN_ARGS=f"--data_dir={tiny_data} --compile=false --n_layer=2 --n_head=2 --n_embd=32 --window=5")
    done = subprocess.run(["bash", "results/multigpu.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout, {row["run"]: row for row in csv.DictReader(open(out / "multigpu.csv"))}


def test_two_processes_and_a_resumed_run_match_one(summary):
    out, stdout, rows = summary
    assert list(rows) == ["swan-n1", "swan-n2", "swan-n1-repeat", "swan-n2-resumed-n1"]
    assert float(rows["swan-n1-repeat"]["max_rel_loss_diff"]) < 1e-6  # on the CPU the same run is the same
    two, resumed = rows["swan-n2"], rows["swan-n2-resumed-n1"]
    assert two["compared_with"] == "swan-n1" and float(two["max_rel_loss_diff"]) < 1e-5  # float rounding, on the CPU
    assert resumed["compared_with"] == "swan-n2" and resumed["nproc"] == "2->1" and resumed["iters"] == "8"
    assert float(resumed["final_rel_loss_diff"]) < 1e-5 and float(resumed["final_rel_val_diff"]) < 1e-5
    assert float(rows["swan-n1"]["efficiency"]) == 1.0 and float(two["tokens_per_s"]) > 0
    assert float(rows["swan-n1"]["final_loss"]) < 5.7  # it learned (log 300 = 5.70 at the start)
    assert os.path.getsize(out / "multigpu.png") > 10_000 and "wrote" in stdout
    # the stopped half saved at iteration 4 and said so; the log then continued to 8
    log = open(out / "runs" / "swan-n2-resumed-n1.log").read()
    assert "stopped at iter 4 as --stop_at asked" in log
    assert log.index("cpu x2, data") < log.index("stopped at iter 4") < log.index("parameters, cpu x1, data")


def test_stop_at_saves_and_resume_continues(tiny_args, tmp_path):
    run = str(tmp_path / "run")
    train.main(tiny_args + [f"--out_dir={run}", "--max_iters=6", "--stop_at=3", "--eval_interval=100"])
    assert torch.load(os.path.join(run, "ckpt.pt"), weights_only=True)["iter"] == 3
    with pytest.raises(SystemExit, match=r"--stop_at=2 is not after the iteration the run in .* is at \(3\)"):
        train.main(["--init_from=resume", f"--out_dir={run}", "--stop_at=2"])
    train.main(["--init_from=resume", f"--out_dir={run}"])  # the stop is not asked again
    assert torch.load(os.path.join(run, "ckpt.pt"), weights_only=True)["iter"] == 6
    with pytest.raises(SystemExit, match=r"--stop_at=6 must be an iteration below max_iters=6 \(0 = none\)"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'other'}", "--max_iters=6", "--stop_at=6"])
