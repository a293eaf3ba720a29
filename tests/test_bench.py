import csv
import os
import subprocess
import sys

import pytest

import bench
from model import GPTConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cpu_smoke_measures_every_arch_and_shape(tmp_path):
    rows = bench.main(["--cpu_smoke", f"--out={tmp_path}/b"])
    with open(tmp_path / "b.csv") as f:
        written = list(csv.DictReader(f))
    assert len(rows) == len(written) == 3 * 2 + 3 * 2 * 2  # archs x lengths, archs x contexts x batches
    for r in written:
        if r["part"] == "train":
            assert float(r["train_tok_s"]) > 0
        else:
            assert float(r["prefill_tok_s"]) > 0 and float(r["decode_tok_s"]) > 0
    # the cache bytes follow from the layer pattern: G and N layers keep C + 2 * decode_steps
    # positions, S layers a ring of `window`; k and v, 2 heads x 32 dims, fp32
    smoke = bench.SMOKE
    for r in (r for r in rows if r["part"] == "generate"):
        config = GPTConfig.from_arch(r["arch"], n_layer=smoke["n_layer"], window=smoke["window"])
        slots = sum(min(smoke["window"], r["length"] + 2 * smoke["decode_steps"]) if config.layer_kind(i) == "S"
                    else r["length"] + 2 * smoke["decode_steps"] for i in range(smoke["n_layer"]))
        assert r["kv_bytes"] == 2 * r["batch"] * slots * smoke["n_embd"] * 4
        assert r["floor_ms"] > 0 and abs(r["floor_x"] - r["decode_step_ms"] / r["floor_ms"]) < 1e-9
    assert len({r["copy_gb_s"] for r in written}) == 1 and float(written[0]["copy_gb_s"]) > 0  # measured once


def test_a_decoding_steps_bytes():
    # weights once (the tied embedding once) plus k and v of what each layer attends at position 100:
    # all 101 positions (itself included) in N layers 0 and 4, the window of 16 in the six S layers
    from model import GPT
    model = GPT(GPTConfig(vocab_size=50, n_layer=8, n_head=4, n_kv_head=2, n_embd=32, window=16, layer_pattern="NSSS"))
    n_params = 50 * 32 + 8 * (32 * (32 + 2 * 16) + 32 * 32 + 2 * 32 * 128 + 2 * 32) + 32
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert bench.step_bytes(model, B=3, pos=100) == 4 * n_params + 2 * 3 * 2 * 8 * 4 * (2 * 101 + 6 * 16)


def test_prefill_rounds_time_only_prefills_the_archs_taking_turns(tmp_path, monkeypatch):
    # a clock that advances 1 s per reading: every timed prefill takes 1 s, so each ratio is exactly 1
    ticks = iter(range(10**6))
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(ticks))
    calls = []
    real = bench.KVCache.__init__
    monkeypatch.setattr(bench.KVCache, "__init__", lambda self, config, *a: calls.append(config.layer_pattern) or real(self, config, *a))
    rows = bench.main(["--cpu_smoke", "--archs=swan,gpt,swat", "--contexts=41", "--batches=1,3", "--prefill_rounds=3",
                       f"--out={tmp_path}/p"])
    assert [(r["part"], r["arch"], r["length"], r["batch"]) for r in rows] == [
        ("prefill", a, 41, b) for b in (1, 3) for a in ("swan", "gpt", "swat")]  # no training, no decoding
    assert calls == ["NSSS", "G", "S"] * 8  # one untimed round and three timed, the archs in turn
    assert all(r["rounds"] == 3 and r["prefill_x_first"] == 1.0 and r["prefill_tok_s"] == 41 * r["batch"] for r in rows)
    with pytest.raises(SystemExit, match=r"^error: --prefill_rounds=-1 must be >= 0 \(0: the full benchmark\)$"):
        bench.main(["--cpu_smoke", "--prefill_rounds=-1"])


def test_command_line_and_bad_settings(tmp_path):
    run = subprocess.run([sys.executable, "bench.py", "--cpu_smoke", "--archs=gpt,swan", "--contexts=40",
                          "--batches=2", f"--out={tmp_path}/c"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| 40 | 2 |" in run.stdout and "decode" in run.stdout
    with pytest.raises(SystemExit, match="--archs='gpt,bert'"):
        bench.main(["--cpu_smoke", "--archs=gpt,bert"])
    with pytest.raises(SystemExit, match="contexts"):
        bench.main(["--cpu_smoke", "--contexts=0"])
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match="cannot create"):
        bench.main(["--cpu_smoke", f"--out={tmp_path}/file/b"])
    with pytest.raises(SystemExit, match="unknown setting"):
        bench.main(["--cpu_smoke", "--layers=3"])
    with pytest.raises(SystemExit, match=r"--compile_decode_mode='max-autotune': must be one of default, max-auto"):
        bench.main(["--cpu_smoke", "--compile_decode", "--compile_decode_mode=max-autotune"])
    with pytest.raises(SystemExit, match="compiles nothing without --compile_decode$"):
        bench.main(["--cpu_smoke", "--compile_decode_mode=max-autotune-no-cudagraphs"])
    with pytest.raises(SystemExit, match=r"^error: bench.py is the GPU benchmark .*; --cpu_smoke runs a tiny version on the CPU$"):
        bench.main(["--device=cpu"])  # what `python bench.py` gives on a machine without a GPU
    bench.main(["--cpu_smoke", "--archs=swat", "--contexts=33", "--batches=1", "--train_lengths=35", f"--out={tmp_path}/new/d"])
    assert len(list(csv.DictReader(open(tmp_path / "new" / "d.csv")))) == 2  # the folder is made


def test_ctrl_c_keeps_what_was_measured_and_exits_130(tmp_path, ctrl_c_when):
    # generation (one quick measurement), then a training of endless steps, stopped by Ctrl-C
    cmd = [sys.executable, "bench.py", "--cpu_smoke", "--archs=gpt", "--contexts=40", "--batches=1", "--train_lengths=64",
           "--train_steps=100000000", f"--out={tmp_path}/b"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = ctrl_c_when(proc, (tmp_path / "b.csv").exists, settle=0.5)  # 0.5 s: into the training steps
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.splitlines()[-1] == f"interrupted: stopped after 1 of 2 measurements; {tmp_path}/b.csv keeps the 1 measured"
    assert [r["part"] for r in csv.DictReader(open(tmp_path / "b.csv"))] == ["generate"]


def test_decode_backend_setting(tmp_path):
    # the Triton decoding kernel (Triton's interpreter on the CPU) beside the default torch path: the
    # CSV says which path each generation row decoded with; training rows leave it blank. On a GPU
    # machine the interpreter is off (tests/conftest.py), so --cpu_smoke decodes with torch only there.
    # One arch says what the column says; swat's decoding is the quickest in the interpreter (38 s
    # against 54 s for swan on 2 cores), and the kernels' own tests cover the others
    for backend in ("triton", "torch") if os.environ.get("TRITON_INTERPRET") == "1" else ("torch",):
        bench.main(["--cpu_smoke", "--archs=swat", "--contexts=40", "--batches=2", "--train_lengths=64",
                    f"--decode_backend={backend}", f"--out={tmp_path}/{backend}"])
        written = list(csv.DictReader(open(tmp_path / f"{backend}.csv")))
        assert {(r["part"], r["decode_backend"]) for r in written} == {("generate", backend), ("train", "")}
        assert all(float(r["decode_tok_s"]) > 0 for r in written if r["part"] == "generate")
    with pytest.raises(SystemExit, match=r"^error: --decode_backend='cuda': must be 'torch' or 'triton'$"):
        bench.main(["--cpu_smoke", "--decode_backend=cuda"])


def test_triton_decoding_on_the_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(SystemExit, match="needs a GPU, or TRITON_INTERPRET=1 on the CPU"):
        bench.main(["--cpu_smoke", "--device=cpu", "--decode_backend=triton"])
