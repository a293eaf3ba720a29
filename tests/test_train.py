"""train.py on a tiny dataset: loss falls, resume continues exactly and restores its run,
conversion, no silent overwrite, Ctrl-C, bad input."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import train
from data.prepare import load_meta, prepare
from train_config import TrainConfig, build_configs

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
    assert ckpt["data"]["tokenizer_sha256"] == load_meta(ckpt["data"]["data_dir"])["tokenizer_sha256"]
    assert ckpt["data"]["global_batch"] == 4  # batch_size x grad_accum x 1 process
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


def crash_at(iteration, monkeypatch):
    """get_lr raising at `iteration`: a run that dies there, after its last checkpoint."""
    real_get_lr = train.get_lr

    def get_lr(it, cfg):
        if it == iteration:
            raise RuntimeError("simulated crash")
        return real_get_lr(it, cfg)

    monkeypatch.setattr(train, "get_lr", get_lr)


def test_resume_with_no_other_settings_restores_the_run(tiny_args, tmp_path, monkeypatch):
    # a run on data that is not the default, with its own batch and schedule: resumed with nothing
    # but --init_from=resume and --out_dir it must continue exactly, not train the default data
    args = tiny_args + ["--batch_size=5", "--grad_accum=3", "--warmup_iters=3", "--learning_rate=7e-3"]
    straight = run(args, tmp_path / "a", max_iters=11, eval_interval=5)
    crash_at(7, monkeypatch)
    with pytest.raises(RuntimeError, match="simulated"):
        run(args, tmp_path / "b", max_iters=11, eval_interval=5)
    monkeypatch.undo()
    train.main(["--init_from=resume", f"--out_dir={tmp_path / 'b'}"])
    resumed = log_rows(tmp_path / "b")
    assert [r["iter"] for r in resumed] == [r["iter"] for r in straight] and len(resumed) == 11 + 4
    for a, b in zip(straight, resumed):
        for key in {"loss", "val_loss", "lr"} & a.keys():
            assert a[key] == pytest.approx(b[key], rel=1e-5), (a, b)
    ckpt = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)
    assert ckpt["iter"] == 11 and ckpt["train_config"]["batch_size"] == 5 and ckpt["train_config"]["grad_accum"] == 3
    assert ckpt["train_config"]["data_dir"] == os.path.abspath(tiny_args[0].split("=", 1)[1])


def test_resume_applies_or_refuses_what_differs(tiny_args, tmp_path, capsys):
    run(tiny_args, tmp_path, max_iters=5, eval_interval=5)
    before = [(tmp_path / name).read_bytes() for name in ("ckpt.pt", "log.jsonl")]
    resume = tiny_args + [f"--out_dir={tmp_path}", "--init_from=resume"]
    for args, message in [
        (["--batch_size=3"], "global batch of 4 sequences, not batch_size=3 x grad_accum=1 x 1 process"),
        (["--learning_rate=0.02"], r"--learning_rate=0.02 differs from the run in .* \(learning_rate=0.01\); a resumed run "
                                   "keeps its settings except max_iters, eval_interval"),
        (["--arch=gpt"], r"--arch=gpt differs from the run in .* \(arch=swan\)"),
        (["--block_size=64"], r"--block_size=64 differs from the run in .* \(block_size=32\)"),
        (["--n_layer=3"], r"--n_layer=3 differs"),
        ([f"--data_dir={tmp_path}"], "--data_dir=.* differs"),
        (["--max_iters=3"], "--max_iters=3 is below the iteration the run in .* is at \\(5\\)"),
    ]:
        with pytest.raises(SystemExit, match=message) as e:
            train.main(resume + args)
        assert "\n" not in str(e.value)
    assert [(tmp_path / name).read_bytes() for name in ("ckpt.pt", "log.jsonl")] == before  # nothing touched
    capsys.readouterr()
    train.main(resume + ["--max_iters=7", "--eval_interval=7", "--batch_size=2", "--grad_accum=2"])
    out = capsys.readouterr().out
    assert "note: resuming with --max_iters=7 (the run had 5)\n" in out
    assert "note: its global batch of 4 sequences is now batch_size=2 x grad_accum=2 x 1 process(es) (it was 4 x 1 x 1)" in out
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ckpt["iter"] == 7 and ckpt["train_config"]["max_iters"] == 7 and ckpt["data"]["global_batch"] == 4


def test_a_checkpoint_of_another_tokenizer_is_refused(tiny_data, tiny_args, tmp_path):
    # the dataset re-prepared in place, from other text, with the same number of tokens: only the
    # tokenizer's hash tells its ids apart from those the run was trained on
    data = tmp_path / "data"
    prepare(tiny_data_source(tmp_path / "one", "the king and queen of a fair land spoke to their lords"), out_dir=str(data),
            vocab_size=300)
    args = tiny_args[1:] + [f"--data_dir={data}"]
    run(args, tmp_path / "run", max_iters=3, eval_interval=3)
    before = (tmp_path / "run" / "ckpt.pt").read_bytes()
    prepare(tiny_data_source(tmp_path / "two", "a ship sailed over the grey sea at dawn with its crew"), out_dir=str(data),
            vocab_size=300)
    for extra, out_dir in [(["--init_from=resume"], "run"), ([f"--init_from={tmp_path / 'run'}"], "conversion")]:
        with pytest.raises(SystemExit, match=r"ckpt.pt was trained with another tokenizer \(bpe 300, sha256 \w{12}\) than "
                                             r"the one of .*data \(bpe 300, sha256 \w{12}\)") as e:
            train.main(args + extra + [f"--out_dir={tmp_path / out_dir}"])
        assert "\n" not in str(e.value)
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() == before and not (tmp_path / "conversion").exists()


def tiny_data_source(folder, text):  # as conftest's tiny_data, in other words
    folder.mkdir()
    rng, words = np.random.default_rng(1), text.split()
    for d in range(7):
        lines = [" ".join(rng.choice(words, size=rng.integers(3, 9))).capitalize() + "." for _ in range(150)]
        (folder / f"doc{d}.txt").write_text("\n".join(lines))
    return str(folder)


def test_an_old_checkpoint_still_resumes(tiny_args, tmp_path):
    # checkpoints written before the tokenizer hash, the global batch and --overwrite were saved
    run(tiny_args, tmp_path, max_iters=3, eval_interval=3)
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    del ckpt["data"]["tokenizer_sha256"], ckpt["data"]["global_batch"], ckpt["train_config"]["overwrite"]
    torch.save(ckpt, tmp_path / "ckpt.pt")
    rows = run(["--init_from=resume"], tmp_path, max_iters=5)
    assert [r["iter"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5]
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["data"]["global_batch"] == 4


def test_a_new_run_never_replaces_another_silently(tiny_args, tmp_path):
    run(tiny_args, tmp_path / "a", max_iters=3, eval_interval=3)
    before = [(tmp_path / "a" / name).read_bytes() for name in ("ckpt.pt", "log.jsonl")]
    for extra in ([], [f"--init_from={tmp_path / 'a'}", "--arch=gpt"]):  # a new run, a conversion
        with pytest.raises(SystemExit, match=r"already holds a run \(.*ckpt.pt\); continue it with --init_from=resume, "
                                             r"choose another --out_dir, or replace it with --overwrite") as e:
            run(tiny_args + extra, tmp_path / "a", max_iters=5)
        assert "\n" not in str(e.value)
    assert [(tmp_path / "a" / name).read_bytes() for name in ("ckpt.pt", "log.jsonl")] == before
    rows = run(tiny_args + ["--overwrite"], tmp_path / "a", max_iters=2, eval_interval=2)
    assert [r["iter"] for r in rows] == [0, 1, 2, 2]
    assert torch.load(tmp_path / "a" / "ckpt.pt", weights_only=True)["iter"] == 2


def test_gpt_checkpoint_converts_to_swan(tiny_args, tmp_path, capsys):
    gpt_rows = run(tiny_args, tmp_path / "gpt", arch="gpt", max_iters=30, eval_interval=30)
    capsys.readouterr()
    rows = run(tiny_args, tmp_path / "swan", arch="swan", init_from=tmp_path / "gpt", max_iters=4, eval_interval=4,
               nope_layers="pattern")
    assert (f"note: --init_from={tmp_path / 'gpt'}: keeps its weights and sizes (vocab_size=300, n_layer=2, n_head=2, "
            "n_embd=32, n_kv_head=0, mlp=gelu, mlp_hidden=0); changes layer_pattern G -> NSSS\n") in capsys.readouterr().out
    ckpt = torch.load(tmp_path / "swan" / "ckpt.pt", weights_only=True)
    assert ckpt["model_config"]["layer_pattern"] == "NSSS" and ckpt["iter"] == 4
    # it starts from the gpt's weights: far below a fresh model's loss (log 300 = 5.7)
    assert rows[0]["iter"] == 0 and rows[0]["val_loss"] < gpt_rows[0]["val_loss"] - 1.0
    with pytest.raises(SystemExit, match=r"--n_embd=48: a conversion keeps the sizes of .*gpt \(n_embd=32\)"):
        run(tiny_args + ["--n_embd=48"], tmp_path / "wider", arch="swat", init_from=tmp_path / "gpt")
    run(tiny_args, tmp_path / "swat", arch="swat", init_from=tmp_path / "gpt", max_iters=1, window=16)
    assert ("changes layer_pattern G -> S, window 8 -> 16, attn softmax -> sigmoid, alibi none -> balanced\n"
            in capsys.readouterr().out)


def test_notes_for_settings_that_override_or_do_nothing(tiny_args, tmp_path, capsys):
    run(tiny_args, tmp_path / "a", arch="gpt", layer_pattern="NSSS", max_iters=1)
    assert "note: --layer_pattern=NSSS overrides --arch=gpt's G\n" in capsys.readouterr().out
    run(tiny_args, tmp_path / "b", window=40, max_iters=1)  # block_size 32
    assert ("note: window 40 >= block_size 32: in training the S layers see every earlier key (global RoPE layers); "
            "the window limits them only on sequences longer than 40\n") in capsys.readouterr().out
    run(tiny_args, tmp_path / "c", arch="gpt", window=40, max_iters=1)  # no S layer: nothing to say
    assert "note" not in capsys.readouterr().out


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_args, tmp_path, monkeypatch):
    run(tiny_args, tmp_path, max_iters=4, eval_interval=4)
    before = (tmp_path / "ckpt.pt").read_bytes()
    monkeypatch.setattr(train, "get_lr", lambda it, cfg: 1e12)  # the rate is not a setting a resume may change
    with pytest.raises(SystemExit, match="loss became"):
        run(tiny_args, tmp_path, max_iters=50, eval_interval=2, init_from="resume")
    assert (tmp_path / "ckpt.pt").read_bytes() == before


def test_a_second_ctrl_c_during_the_save_keeps_the_previous_checkpoint(tiny_args, tmp_path, monkeypatch, capsys):
    real_get_lr, real_save = train.get_lr, torch.save
    asked = []

    def get_lr(it, cfg):  # Ctrl-C during iteration 5, after the checkpoint of iteration 4
        if it == 5:
            asked.append(it)
            os.kill(os.getpid(), signal.SIGINT)
        return real_get_lr(it, cfg)

    def save(obj, f):  # and again halfway through the save it asked for
        if asked:
            f.write(b"half a checkpoint")
            os.kill(os.getpid(), signal.SIGINT)
        real_save(obj, f)

    run(tiny_args, tmp_path, max_iters=4, eval_interval=4)
    before = (tmp_path / "ckpt.pt").read_bytes()
    monkeypatch.setattr(train, "get_lr", get_lr)
    monkeypatch.setattr(torch, "save", save)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as e:
        run(tiny_args, tmp_path, max_iters=9, eval_interval=4, init_from="resume")
    assert e.value.code == 130 and signal.getsignal(signal.SIGINT) is handler  # and pytest's handler is back
    assert (tmp_path / "ckpt.pt").read_bytes() == before and sorted(os.listdir(tmp_path)) == ["ckpt.pt", "log.jsonl"]
    err = capsys.readouterr().err
    assert err.endswith(f"interrupted: stopped at once by a second Ctrl-C, without saving; the last good checkpoint "
                        f"is {tmp_path / 'ckpt.pt'}\n"), err


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tiny_args, tmp_path, ctrl_c_when):
    cmd = [sys.executable, "train.py", *tiny_args, f"--out_dir={tmp_path}", "--max_iters=100000", "--eval_interval=100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "log.jsonl"
    out, err = ctrl_c_when(proc, lambda: log.exists() and len(log.read_text().splitlines()) >= 4)
    assert proc.returncode == 130 and "Traceback" not in err, err  # non-zero: `train && evaluate` stops here
    assert "interrupted: saved" in out
    assert "\r" not in err and all(line.startswith("  0%|") for line in err.splitlines())  # plain lines in a pipe
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
    (["--learning_rate=-1"], r"^error: --learning_rate=-1.0 must be > 0$"),
    (["--rope_base=0"], r"^error: --rope_base=0.0 must be > 1 \(RoPE's wavelengths"),
    (["--warmup_iters=-5"], "--warmup_iters=-5 must be >= 0"),
    (["--min_lr_ratio=1.5"], r"--min_lr_ratio=1.5 must be in \[0, 1\]"),
    (["--weight_decay=-0.1"], "--weight_decay=-0.1 must be >= 0"),
    (["--beta2=1"], r"--beta2=1.0 must be in \[0, 1\)"),
    (["--grad_clip=-1"], "--grad_clip=-1.0 must be >= 0"),
    (["--sample_tokens=-3"], "--sample_tokens=-3 must be >= 0"),
    (["--seed=-7"], "--seed=-7 must be >= 0"),
    (["--batch_size=0"], "--batch_size must be >= 1"),
    (["--init_from=resume"], "no checkpoint at"),
])
def test_bad_input_is_one_clear_line(tiny_args, tmp_path, args, message):
    with pytest.raises(SystemExit, match=message) as e:
        train.main(tiny_args + [f"--out_dir={tmp_path}"] + args)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("arg,message", [("--learning_rate=fast", "error: --learning_rate='fast' is not a valid float"),
                                         ("--learning_rate=-1", "error: --learning_rate=-1.0 must be > 0")])
def test_bad_input_on_the_command_line_prints_no_traceback(tmp_path, arg, message):
    out = subprocess.run([sys.executable, "train.py", arg, f"--out_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr == message + "\n" and not os.listdir(tmp_path)


def test_every_shipped_preset_parses():
    for preset in sorted(os.listdir(os.path.join(ROOT, "config"))):
        build_configs([os.path.join(ROOT, "config", preset)])


def test_cpu_preset_is_the_default():
    preset = build_configs([os.path.join(ROOT, "config", "shakespeare.py")])
    assert preset == (TrainConfig(), {k: getattr(train.GPTConfig(), k) for k in preset[1]})
