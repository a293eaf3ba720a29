"""common.py: settings from dataclasses and presets, generated --help, lists, the device."""

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Demo:
    max_iters: int = 400  # optimizer steps
    learning_rate: float = 3e-3
    compile: bool = False  # torch.compile the model
    arch: str = "swan"
    scale_base: float | None = None  # None = off


def test_a_bare_flag_is_only_for_yes_no_settings():
    assert common.parse_settings(["--compile", "--max_iters=3"], Demo) == dict(compile=True, max_iters=3)
    with pytest.raises(SystemExit, match="--max_iters: write settings as --key=value"):
        common.parse_settings(["--max_iters"], Demo)


def test_presets_are_read_not_executed(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("# a preset\narch = 'gpt'\nmax_iters = 7\nlearning_rate = 1e-3  # why\nscale_base = None\n")
    assert common.parse_settings([str(good), "--max_iters=9"], Demo) == \
        dict(arch="gpt", max_iters=9, learning_rate=1e-3, scale_base=None)
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    with pytest.raises(SystemExit, match="only `key = value`"):
        common.parse_settings([str(bad)], Demo)
    with pytest.raises(SystemExit, match="takes only --key=value"):
        common.parse_settings([str(good)], Demo, presets=False)


def test_values_are_typed_or_refused_in_one_line():
    assert common.parse_settings(["--scale_base=off", "--learning_rate=1"], Demo) == dict(scale_base=None, learning_rate=1.0)
    assert common.parse_settings(["--scale_base=362.5"], Demo) == dict(scale_base=362.5)
    for arg, message in [("--max_iters=1.5", "not a valid int"), ("--compile=maybe", "not a valid bool"),
                         ("--scale_base=big", "not a valid float or None"), ("--bogus=1", "unknown setting 'bogus'")]:
        with pytest.raises(SystemExit, match=message) as e:
            common.parse_settings([arg], Demo)
        assert str(e.value).startswith("error: ") and "\n" not in str(e.value)


def test_help_lists_every_field_with_its_default_and_comment(capsys):
    with pytest.raises(SystemExit) as e:
        common.parse_settings(["--max_iters=3", "--help"], Demo, doc="Demo script.\n\n    python demo.py")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Demo script.")
    assert "  --max_iters=400  # optimizer steps" in out
    assert "  --learning_rate=0.003\n" in out  # no comment, no '#'
    assert "  --scale_base=None  # None = off" in out


@pytest.mark.parametrize("script", ["train.py", "sample.py", "extrapolate.py", "bench.py", "bench_attention.py"])
def test_every_script_has_help(script):
    out = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert "settings (--key=value" in out.stdout and out.stdout.count("\n  --") >= 1
    assert "--device=auto" in out.stdout or script == "bench_attention.py"


def test_parse_list():
    assert common.parse_list("lengths", "64,32,64,1024") == [64, 32, 1024]
    assert common.parse_list("depths", "0,0.5", float, lambda d: 0 <= d < 1, "fractions in [0, 1)") == [0.0, 0.5]
    for text in ("32,abc", "0,32", ""):
        with pytest.raises(SystemExit, match="is not a comma-separated list of integers >= 1"):
            common.parse_list("lengths", text)


def test_pick_device():
    assert common.pick_device("cpu") == "cpu"
    with pytest.raises(SystemExit, match="--device must be auto, cpu or cuda, got 'tpu'"):
        common.pick_device("tpu")


def test_progress_into_a_pipe_is_plain_lines(monkeypatch, capsys):
    monkeypatch.setattr(common, "LOG_EVERY_S", 0)  # a line at every update
    bar = common.progress(total=7, desc="eval", unit="tok")  # pytest's stderr is not a terminal
    assert isinstance(bar, common.LogLines)
    bar.update(3)
    bar.set_postfix(loss="2.50", refresh=False)
    bar.update(2)
    bar.close()
    bar.close()  # once
    err = capsys.readouterr().err
    assert "\r" not in err and [line.split(" [")[0] for line in err.splitlines()] == \
        ["eval:  43%|####2     | 3/7", "eval:  71%|#######1  | 5/7"]
    assert err.splitlines()[1].endswith(", loss=2.50]")
    monkeypatch.setattr(common, "LOG_EVERY_S", 3600)  # a line at the end only
    assert list(common.progress(iterable=range(5), unit="run")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err.startswith("100%|##########| 5/5 [")
    assert common.progress(total=9, disable=True).close() is None and capsys.readouterr().err == ""


def test_default_outputs_go_to_the_run_folder_and_bench_out(tiny_args, tmp_path, monkeypatch):
    import bench
    import extrapolate
    import train
    run = tmp_path / "run"
    train.main(tiny_args + [f"--out_dir={run}", "--max_iters=2", "--eval_interval=2"])
    monkeypatch.chdir(tmp_path)  # where the user stands: nothing may land here
    extrapolate.main([str(run / "ckpt.pt"), "--lengths=32,64", "--num_windows=3", "--device=cpu"])
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert {"extrapolation.csv", "extrapolation.png"} <= set(os.listdir(run))
    assert bench.BenchConfig.out == "bench_out/bench" and "bench_out/\n" in open(os.path.join(ROOT, ".gitignore")).read()


def test_run_color_keeps_the_default_colours_for_ten_runs_and_repeats_none_of_twenty():
    from matplotlib.colors import to_rgba
    assert [common.run_color(i, 10) for i in range(10)] == [f"C{i}" for i in range(10)]
    colours = [to_rgba(common.run_color(i, 20)) for i in range(20)]
    assert len(set(colours)) == 20
    assert colours[0] == to_rgba(common.run_color(0, 11))  # the first run keeps tab20's darkest blue however many follow
