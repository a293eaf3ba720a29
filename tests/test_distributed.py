"""train.py under torchrun: gloo processes on the CPU. Two processes train exactly what one does
with the same global batch, a run resumes on another number of processes, rank 0 alone writes,
Ctrl-C stops every process after the same step, and a failure ends them all with one line."""

import json
import re
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import train
from train_config import build_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def settings(tiny_data):
    return [f"--data_dir={tiny_data}", "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32", "--window=8",
            "--eval_iters=3", "--eval_interval=3", "--sample_tokens=0", "--device=cpu", "--log_interval=1",
            "--warmup_iters=2", "--learning_rate=1e-2"]


def torchrun(args, nproc=2, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "train.py", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)


def logged(out_dir):
    """{(iter, 'loss' or 'val_loss'): value} of a run's log, each logged once."""
    rows = [json.loads(line) for line in open(os.path.join(out_dir, "log.jsonl"))]
    values = {(r["iter"], key): r[key] for r in rows for key in ("loss", "val_loss") if key in r}
    assert len(values) == len(rows)  # no line twice: one process wrote it
    return values


def test_the_global_batch_does_not_depend_on_the_process_count(tiny_data):
    def batch(world, it, **given):  # the global batch: every rank's share, in rank order
        cfg = build_configs([f"--data_dir={tiny_data}", "--max_iters=10"] + [f"--{k}={v}" for k, v in given.items()])[0]
        _, tokens, _, tasks = train.load_data(cfg, True, False)
        shares = [train.get_batch(tokens, it, cfg, 200, r, "cpu", stream=0, tasks=tasks, world=world) for r in range(world)]
        weights = [w for _, _, w in shares]
        return (torch.cat([x for x, _, _ in shares]), torch.cat([y for _, y, _ in shares]), tokens,
                None if weights[0] is None else torch.cat(weights))

    for it in (0, 7):
        x, y, tokens, _ = batch(1, it, batch_size=9)
        # one process draws what it drew before batches were shared: rng key [seed, stream, it, rank 0]
        starts = np.random.default_rng([1337, 0, it, 0]).integers(0, len(tokens) - 201, size=9)
        assert torch.equal(x, torch.from_numpy(np.stack([tokens[s:s + 200] for s in starts]).astype(np.int64)))
        for world, split in ((3, dict(batch_size=3)), (3, dict(batch_size=1, grad_accum=3))):
            assert all(torch.equal(a, b) for a, b in zip((x, y), batch(world, it, **split)[:2]))
        # with the retrieval mix too: the same rows become the same needle examples
        mixed = batch(1, it, batch_size=9, retrieval=0.4, retrieval_keys=1)[0]
        assert 3 <= (mixed != x).any(1).sum() <= 4  # 0.4 x 9 = 3.6 rows, rounded at random
        assert torch.equal(mixed, batch(3, it, batch_size=3, retrieval=0.4, retrieval_keys=1)[0])
        # and the answers' weights: the same, scaled by the global batch's mean weight on every share
        weighted = dict(retrieval=0.4, retrieval_keys=1, retrieval_answer_weight=5)
        one, three = batch(1, it, batch_size=9, **weighted)[3], batch(3, it, batch_size=1, grad_accum=3, **weighted)[3]
        assert torch.equal(one, three) and one.mean().item() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """The same run on one process (batch 6) and on two (batch 3 each): 6 iterations, resumed to
    9 with nothing but --max_iters; the two-process run then resumed on one process to 12."""
    base, args = tmp_path_factory.mktemp("distributed"), settings(tiny_data)
    one, two = str(base / "one"), str(base / "two")
    train.main(args + [f"--out_dir={one}", "--batch_size=6", "--max_iters=6"])
    first = torchrun(args + [f"--out_dir={two}", "--batch_size=3", "--max_iters=6"])
    assert first.returncode == 0, first.stderr
    two_at_6 = logged(two)
    for max_iters in (9, 12):
        train.main(["--init_from=resume", f"--out_dir={one}", f"--max_iters={max_iters}"])
    second = torchrun(["--init_from=resume", f"--out_dir={two}", "--max_iters=9"])
    assert second.returncode == 0, second.stderr
    return dict(one=one, two=two, first=first, second=second, two_at_6=two_at_6, two_at_9=logged(two))


def test_two_processes_train_what_one_does(runs, capsys):
    one = logged(runs["one"])
    for two in (runs["two_at_6"], runs["two_at_9"]):
        assert set(two) == {k for k in one if k[0] <= max(i for i, _ in two)}
        worst = max(abs(two[k] - one[k]) / abs(one[k]) for k in two)
        with capsys.disabled():
            print(f"\n2 processes vs 1, iterations 0..{max(i for i, _ in two)}: max relative difference {worst:.2e}")
        assert worst < 2e-3
    assert one[12, "val_loss"] < one[0, "val_loss"] - 1.0  # and it learned
    ckpt = torch.load(os.path.join(runs["two"], "ckpt.pt"), weights_only=True)
    assert ckpt["iter"] == 9 and ckpt["data"]["global_batch"] == 6 and ckpt["train_config"]["batch_size"] == 3


def test_rank_0_alone_writes(runs):
    first, second = runs["first"], runs["second"]
    assert first.stdout.count("0.03M parameters, cpu x2, data") == 1
    assert second.stdout.count("note: resuming with --max_iters=9 (the run had 6)\n") == 1
    assert second.stdout.count("parameters, cpu x2") == 1 and "\r" not in first.stderr + second.stderr
    assert sorted(os.listdir(runs["two"])) == ["ckpt.pt", "log.jsonl"]  # and each log line once (logged)


def test_a_run_resumes_on_another_number_of_processes(runs, capsys):
    train.main(["--init_from=resume", f"--out_dir={runs['two']}", "--max_iters=12"])
    assert ("note: its global batch of 6 sequences is now batch_size=6 x grad_accum=1 x 1 process(es) (it was 3 x 1 x 2)"
            in capsys.readouterr().out)
    one, two = logged(runs["one"]), logged(runs["two"])
    assert set(two) == set(one) and max(abs(two[k] - one[k]) / abs(one[k]) for k in one) < 2e-3
    with pytest.raises(SystemExit, match="global batch of 6 sequences, not batch_size=4 x grad_accum=1 x 1 process"):
        train.main(["--init_from=resume", f"--out_dir={runs['two']}", "--max_iters=13", "--batch_size=4"])


def test_a_failure_ends_every_process_with_one_line(tiny_data, tmp_path):
    t0 = time.time()
    bad = torchrun(settings(tiny_data) + [f"--out_dir={tmp_path / 'run'}", "--learning_rate=-1"])
    assert bad.returncode != 0 and time.time() - t0 < 60
    # ours is one line from rank 0; the rest of stderr is torchrun's own report of the failed processes
    assert [line for line in bad.stderr.splitlines() if line.startswith("error:")] == ["error: --learning_rate=-1.0 must be > 0"]
    assert 'train.py", line' not in bad.stderr and bad.stdout == "" and not os.path.exists(tmp_path / "run")


def test_ctrl_c_stops_every_process_after_the_same_step(tiny_data, tmp_path, ctrl_c_when):
    # torchrun passes Ctrl-C to each process, not at the same instant: they agree, rank 0 saves
    proc = torchrun(settings(tiny_data) + [f"--out_dir={tmp_path}", "--batch_size=3", "--max_iters=100000",
                                           "--eval_interval=100000"], popen=True)
    log = tmp_path / "log.jsonl"
    out, err = ctrl_c_when(proc, lambda: log.exists() and len(log.read_text().splitlines()) >= 5)
    assert proc.returncode != 0 and out.count("interrupted: saved") == 1, err
    stopped_at = torch.load(tmp_path / "ckpt.pt", weights_only=True)["iter"]
    assert stopped_at >= 4 and max(i for i, _ in logged(tmp_path)) == stopped_at
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt", "log.jsonl"]


def test_a_measured_conversion_chooses_alike_on_any_number_of_processes(tiny_data, tmp_path, capsys):
    # each process measures its share of the same global batches; the costs are averaged over all
    args = [a for a in settings(tiny_data) if not a.startswith("--n_layer")] + ["--n_layer=4", "--max_iters=1"]
    train.main(args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=30", "--eval_interval=30"])
    convert = args + [f"--init_from={tmp_path / 'gpt'}", "--arch=swan"]
    capsys.readouterr()
    train.main(convert + [f"--out_dir={tmp_path / 'one'}", "--batch_size=6"])
    one = capsys.readouterr().out
    two = torchrun(convert + [f"--out_dir={tmp_path / 'two'}", "--batch_size=3"])
    assert two.returncode == 0, two.stderr

    def costs(out):
        line = next(line for line in out.splitlines() if "--nope_layers=measured" in line)
        values = re.search(r"as N/S \((.*)\); layer_pattern=(\w+)", line)
        return [float(v) for c in values[1].split(", ") for v in c.split(": ")[1].split("/")], values[2]

    (cost_one, pattern_one), (cost_two, pattern_two) = costs(one), costs(two.stdout)
    assert pattern_one == pattern_two and two.stdout.count("--nope_layers=measured") == 1
    assert max(abs(a - b) for a, b in zip(cost_one, cost_two)) <= 1e-3 * max(map(abs, cost_one)) + 1e-8
