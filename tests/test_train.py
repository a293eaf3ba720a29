"""train.py on a tiny dataset: loss falls, resume continues exactly, conversion, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log_rows(out_dir):
    return [json.loads(line) for line in open(os.path.join(out_dir, "log.jsonl"))]


def run(args, out_dir, **settings):
    train.main(args + [f"--out_dir={out_dir}"] + [f"--{k}={v}" for k, v in settings.items()])
    return log_rows(out_dir)


def test_loss_falls_and_log_is_written(tiny_args, tmp_path):
    rows = run(tiny_args, tmp_path, max_iters=60, eval_interval=30)
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["iter"] for r in rows if "val_loss" in r] == [0, 30, 60]
    assert val[-1] < val[0] - 1.0, val  # from near-uniform over 300 tokens to well below
    assert len(train_rows) == 60 and all({"lr", "tokens_per_s"} <= r.keys() for r in train_rows)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["iter"] == 60 and ckpt["model_config"]["layer_pattern"] == "NSSS"
    assert ckpt["data"]["data_dir"] == os.path.abspath(tiny_args[0].split("=", 1)[1])
    assert not (tmp_path / "ckpt.pt.tmp").exists()


def test_resume_continues_as_if_never_stopped(tiny_args, tmp_path, monkeypatch):
    straight = run(tiny_args, tmp_path / "a", max_iters=12, eval_interval=6)
    real_get_lr = train.get_lr

    def crash_at_9(it, cfg):  # the same run crashing at iteration 9, after its checkpoint at 6
        if it == 9:
            raise RuntimeError("simulated crash")
        return real_get_lr(it, cfg)

    monkeypatch.setattr(train, "get_lr", crash_at_9)
    with pytest.raises(RuntimeError, match="simulated"):
        run(tiny_args, tmp_path / "b", max_iters=12, eval_interval=6)
    assert torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)["iter"] == 6
    monkeypatch.setattr(train, "get_lr", real_get_lr)
    resumed = run(tiny_args, tmp_path / "b", max_iters=12, eval_interval=6, init_from="resume")
    assert [r["iter"] for r in resumed] == [r["iter"] for r in straight]
    for a, b in zip(straight, resumed):
        assert a.keys() == b.keys()
        for key in {"loss", "val_loss"} & a.keys():
            assert a[key] == pytest.approx(b[key], rel=1e-5), (a, b)
    a = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_gpt_checkpoint_converts_to_swan(tiny_args, tmp_path):
    gpt_rows = run(tiny_args, tmp_path / "gpt", arch="gpt", max_iters=30, eval_interval=30)
    rows = run(tiny_args, tmp_path / "swan", arch="swan", init_from=tmp_path / "gpt", max_iters=4, eval_interval=4)
    ckpt = torch.load(tmp_path / "swan" / "ckpt.pt", weights_only=True)
    assert ckpt["model_config"]["layer_pattern"] == "NSSS" and ckpt["iter"] == 4
    # it starts from the gpt's weights: far below a fresh model's loss (log 300 = 5.7)
    assert rows[0]["iter"] == 0 and rows[0]["val_loss"] < gpt_rows[0]["val_loss"] - 1.0


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_args, tmp_path):
    run(tiny_args, tmp_path, max_iters=4, eval_interval=4)
    before = (tmp_path / "ckpt.pt").read_bytes()
    with pytest.raises(SystemExit, match="loss became"):
        run(tiny_args, tmp_path, max_iters=50, eval_interval=2, init_from="resume", learning_rate=1e12, grad_clip=0)
    assert (tmp_path / "ckpt.pt").read_bytes() == before


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tiny_args, tmp_path):
    cmd = [sys.executable, "train.py", *tiny_args, f"--out_dir={tmp_path}", "--max_iters=100000", "--eval_interval=100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "log.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 4):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "interrupted: saved" in out
    stopped_at = torch.load(tmp_path / "ckpt.pt", weights_only=True)["iter"]
    assert stopped_at >= 3
    rows = run(tiny_args, tmp_path, max_iters=stopped_at + 3, eval_interval=100000, init_from="resume")
    assert [r["iter"] for r in rows if "loss" in r] == list(range(1, stopped_at + 4))


@pytest.mark.parametrize("args,message", [
    (["--bogus=1"], "unknown setting 'bogus'"),
    (["--max_iters=ten"], "not a valid int"),
    (["--compile=maybe"], "not a valid bool"),
    (["--arch=llama"], "--arch must be one of"),
    (["--device=tpu"], "--device must be"),
    (["--max_iters"], "--key=value"),
    (["--layer_pattern=NSX"], "layer_pattern"),
    (["--window=0"], "window"),
    (["--data_dir=/no/such/dir"], "not a prepared dataset"),
    (["--init_from=/no/such/run"], "no checkpoint at"),
    (["--block_size=100000"], "does not fit"),
])
def test_bad_input_is_one_clear_line(tiny_args, tmp_path, args, message):
    with pytest.raises(SystemExit, match=message) as e:
        train.main(tiny_args + [f"--out_dir={tmp_path}"] + args)
    assert "\n" not in str(e.value)


def test_bad_input_on_the_command_line_prints_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "train.py", "--learning_rate=fast", f"--out_dir={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip() == "error: --learning_rate='fast' is not a valid float"


def test_every_shipped_preset_parses():
    for preset in sorted(os.listdir(os.path.join(ROOT, "config"))):
        train.build_configs([os.path.join(ROOT, "config", preset)])


def test_cpu_preset_is_the_default():
    preset = train.build_configs([os.path.join(ROOT, "config", "shakespeare.py")])
    assert preset == (train.TrainConfig(), {k: getattr(train.GPTConfig(), k) for k in preset[1]})
