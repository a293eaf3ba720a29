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


def test_command_line_and_bad_settings(tmp_path):
    run = subprocess.run([sys.executable, "bench.py", "--cpu_smoke", "--archs=gpt,swan", "--contexts=40",
                          "--batches=2", f"--out={tmp_path}/c"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| 40 | 2 |" in run.stdout and "decode" in run.stdout
    with pytest.raises(SystemExit, match="--archs='gpt,bert'"):
        bench.main(["--cpu_smoke", "--archs=gpt,bert"])
    with pytest.raises(SystemExit, match="contexts"):
        bench.main(["--cpu_smoke", "--contexts=0"])
    with pytest.raises(SystemExit, match="not a writable folder"):
        bench.main(["--cpu_smoke", f"--out={tmp_path}/missing/b"])
    with pytest.raises(SystemExit, match="unknown setting"):
        bench.main(["--cpu_smoke", "--layers=3"])
