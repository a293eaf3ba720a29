"""extrapolate.py on tiny runs: windows inside documents and shared by every model, the numbers
against an independent computation, skipped lengths, scale tuning on held-out documents, files
written, and bad input as one line."""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import torch

import extrapolate
import scaling
import train
from checkpoint import load_model
from data.prepare import load_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and threads spin when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """Two tiny runs on tiny_data, L = 32: a gpt and a swan (layers N, S)."""
    base = tmp_path_factory.mktemp("runs")
    for arch in ("gpt", "swan"):
        train.main([f"--data_dir={tiny_data}", f"--out_dir={base / arch}", f"--arch={arch}", "--n_layer=2",
                    "--n_head=2", "--n_embd=32", f"--block_size={L}", "--window=8", "--batch_size=8",
                    "--max_iters=40", "--eval_interval=40", "--learning_rate=1e-2", "--warmup_iters=5",
                    "--sample_tokens=0", "--device=cpu"])
    return str(base / "gpt"), str(base / "swan")


def copy_dataset(src, dst, val_from="val", **meta_changes):
    """A copy of a prepared dataset; val_from="train" makes its 11 train documents the val split
    (the same tokenizer, so the tiny runs apply to it, and enough documents to tune on)."""
    shutil.copytree(src, dst)
    for name in ("{}.bin", "{}_docs.npy"):
        shutil.copy(os.path.join(src, name.format(val_from)), os.path.join(dst, name.format("val")))
    meta_path = pathlib.Path(dst, "meta.json")
    meta = json.loads(meta_path.read_text())
    meta["val_tokens"], meta["val_docs"] = meta[f"{val_from}_tokens"], meta[f"{val_from}_docs"]
    meta_path.write_text(json.dumps({**meta, **meta_changes}))
    return str(dst)


@pytest.fixture(scope="module")
def many_docs(tiny_data, tmp_path_factory):
    return copy_dataset(tiny_data, tmp_path_factory.mktemp("many") / "data", val_from="train")


def spy_on_windows(monkeypatch):
    """Records every window_losses call of main as (model id, scale_base, T, starts)."""
    calls, real = [], extrapolate.window_losses

    def spy(model, tokens, starts, T, *args, **kwargs):
        calls.append((id(model), model.config.scale_base, T, tuple(starts.tolist())))
        return real(model, tokens, starts, T, *args, **kwargs)

    monkeypatch.setattr(extrapolate, "window_losses", spy)
    return calls


@pytest.fixture
def record(monkeypatch):
    return spy_on_windows(monkeypatch)


def read_csv(prefix):
    return list(csv.DictReader(open(f"{prefix}.csv")))


def inside(starts, T, spans):
    """Index of the document holding each window [s, s + T + 1), or -1 where none holds it."""
    return [next((d for d, (a, b) in enumerate(spans) if a <= s and s + T + 1 <= b), -1) for s in starts]


def test_windows_stay_inside_documents_and_do_not_overlap():
    # documents of uneven lengths with gaps (EOT tokens) between them, some too short for T
    lengths = [5, 300, 64, 1000, 33, 129, 2]
    starts = np.cumsum([0] + [n + 1 for n in lengths[:-1]])
    spans = np.stack([starts, starts + lengths], axis=1)
    for T in (1, 32, 63, 64, 128, 500):
        for seed in (0, 1):
            fits = [n // (T + 1) for n in lengths]
            for num in (1, 3, 1000):
                got = extrapolate.choose_windows(spans, T, num, seed)
                assert len(got) == min(num, sum(fits))
                docs = inside(got, T, spans)
                assert -1 not in docs, (T, seed, num)
                assert (np.diff(got) >= T + 1).all()  # sorted and never overlapping
                # spread: up to num, every document with room gets a window before any gets two
                per_doc, with_room = np.bincount(docs, minlength=len(lengths)), sum(f > 0 for f in fits)
                if num <= with_room:
                    assert per_doc.max() == 1
                else:
                    assert all(per_doc[d] >= 1 for d in range(len(lengths)) if fits[d])
                assert np.array_equal(got, extrapolate.choose_windows(spans, T, num, seed))  # deterministic
    a, b = (extrapolate.choose_windows(spans, 16, 8, seed) for seed in (0, 1))
    assert not np.array_equal(a, b)  # the seed matters


def test_tune_base_considers_off_and_grows_past_an_edge():
    calls = []

    def loss_of(base):  # a stub model whose loss is lowest at a = 20000, far past the first grid
        calls.append(base)
        return 1.0 if base is None else 0.5 + 0.1 * abs(np.log2(base / 20000))

    best, losses, interior = scaling.tune_base(loss_of)
    assert calls[0] is None and None in losses  # "off" first, always a candidate
    assert interior and 16384 in losses and 32768 in losses and 65536 not in losses  # grown until inside
    assert best == pytest.approx(16384 * 2 ** 0.5)  # refined between neighbours: 23170 is nearer 20000
    assert len(calls) == len(set(calls))  # no base evaluated twice
    # "off" wins when no base helps; a best base on a limit is reported as not interior
    best, losses, interior = scaling.tune_base(lambda b: 1.0 if b is None else 1.0 + 1 / b)
    assert best is None and not interior and max(b for b in losses if b) == 2 ** 20
    best, _, interior = scaling.tune_base(lambda b: 1.0 if b is None else np.log(b), grid=(4, 8))
    assert best == 2 and not interior  # halved down to the lower limit, 1.5 < 2


def test_position_bins():
    assert extrapolate.position_bins(1) == [(1, 1)]
    assert extrapolate.position_bins(8) == [(1, 1), (2, 3), (4, 8)]
    assert extrapolate.position_bins(1000)[-2:] == [(256, 511), (512, 1000)]
    bins = extrapolate.position_bins(1024)
    assert bins[0] == (1, 1) and bins[-1] == (512, 1024)
    assert all(b[0] == a[1] + 1 for a, b in zip(bins, bins[1:]))  # every position, once


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    """One full run of main: both models, scaling off and a=64, on tiny_data (one val document)."""
    out = str(tmp_path_factory.mktemp("report") / "ext")
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = spy_on_windows(monkeypatch)
        result = extrapolate.main([*runs, "--scale_base=off,64", f"--out={out}", "--device=cpu", "--num_windows=4"])
    return result, out, calls


def test_every_model_sees_the_same_windows(report, tiny_data):
    result, _, calls = report
    assert result["lengths"] == [32, 64, 128, 256, 512, 1024]  # L .. 32 L
    _, spans = load_split(tiny_data, "val")
    for T in result["lengths"]:
        seen = {c[3] for c in calls if c[2] == T}
        assert len([c for c in calls if c[2] == T]) == 3  # gpt once, swan off and a=64
        assert len({c[0] for c in calls if c[2] == T}) == 2  # two models
        assert seen == {tuple(result["windows"][T].tolist())}  # one set of windows per length
        assert seen == {tuple(extrapolate.choose_windows(spans, T, 4, 1337).tolist())}
        assert -1 not in inside(result["windows"][T], T, spans)
    assert {c[1] for c in calls} == {None, 64.0}


def test_csv_png_and_table_are_written(report):
    result, out, _ = report
    rows = read_csv(out)
    mean = [r for r in rows if r["kind"] == "mean"]
    assert len(mean) == 3 * 6  # (gpt off, swan off, swan a=64) x 6 lengths
    assert {(r["model"], r["setting"]) for r in mean} == {("gpt", "off"), ("swan", "off"), ("swan", "a=64")}
    assert {r["arch"] for r in rows} == {"gpt", "swan"} and {r["layer_pattern"] for r in rows} == {"G", "NSSS"}
    position = [r for r in rows if r["kind"] == "position"]
    assert len(position) == 3 * len(extrapolate.position_bins(1024))
    assert all(r["length"] == "1024" for r in position)
    for model, setting in (("gpt", "off"), ("swan", "a=64")):  # the bins add up to the mean
        bins = [r for r in position if (r["model"], r["setting"]) == (model, setting)]
        weighted = sum(float(r["loss"]) * int(r["n_tokens"]) for r in bins) / sum(int(r["n_tokens"]) for r in bins)
        full = next(r for r in mean if (r["model"], r["setting"], r["length"]) == (model, setting, "1024"))
        assert weighted == pytest.approx(float(full["loss"]), rel=1e-6)
    # scaling changes the swan's numbers (its N layer), and is not applied to the gpt
    swan = {(r["setting"], r["length"]): float(r["loss"]) for r in mean if r["model"] == "swan"}
    assert swan[("off", "1024")] != swan[("a=64", "1024")]
    png = open(out + ".png", "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000
    assert matplotlib.image.imread(out + ".png").shape[1] > 1000  # two panels side by side


def test_scaling_from_L_leaves_the_training_length_as_off(report, runs, tmp_path):
    # --scale_from_L: 1 at positions up to L = 32, so the swan's loss at L is off's to the last bit;
    # beyond L it is scaled, less than the paper's a=64 (its rise up to L taken off)
    _, out, _ = report
    paper = {(r["setting"], int(r["length"])): float(r["loss"]) for r in read_csv(out)
             if r["kind"] == "mean" and r["model"] == "swan"}
    shifted = str(tmp_path / "from_L")
    extrapolate.main([runs[1], "--scale_base=off,64", "--scale_from_L", f"--out={shifted}", "--device=cpu",
                      "--num_windows=4", "--lengths=32,1024"])
    mean = {(r["setting"], int(r["length"])): float(r["loss"]) for r in read_csv(shifted) if r["kind"] == "mean"}
    assert set(mean) == {("off", 32), ("off", 1024), ("a=64 from 32", 32), ("a=64 from 32", 1024)}
    assert mean["a=64 from 32", 32] == mean["off", 32] == pytest.approx(paper["off", 32], rel=1e-6)
    assert mean["a=64 from 32", 1024] not in (mean["off", 1024], paper["a=64", 1024])
    with pytest.raises(SystemExit, match="--scale_from_L says where scaling begins"):
        extrapolate.main([runs[1], "--scale_from_L", f"--out={shifted}", "--device=cpu"])


def test_mean_loss_equals_a_direct_computation(report, runs, tiny_data):
    result, out, _ = report
    tokens, _ = load_split(tiny_data, "val")
    mean = {(r["model"], r["setting"], int(r["length"])): float(r["loss"]) for r in read_csv(out) if r["kind"] == "mean"}
    cases = [(runs[0], "gpt", "off", None), (runs[1], "swan", "off", None), (runs[1], "swan", "a=64", 64)]
    for where, name, setting, base in cases:  # scale_base set by the config, as sample.py does
        model, _ = load_model(where, "cpu", scale_base=base)
        model.eval()
        for T in (L, 4 * L):
            losses = []
            for s in result["windows"][T]:  # one window at a time, the model's own mean loss
                chunk = torch.from_numpy(tokens[s:s + T + 1].astype(np.int64))[None]
                with torch.no_grad():
                    losses.append(model(chunk[:, :-1], chunk[:, 1:])[1].item())
            assert mean[(name, setting, T)] == pytest.approx(np.mean(losses), rel=1e-5)


def test_a_too_long_length_is_skipped(runs, tmp_path, capsys):
    result = extrapolate.main([*runs, "--lengths=64,32,5000,1024", f"--out={tmp_path / 'x'}", "--device=cpu"])
    printed = capsys.readouterr().out
    assert "length 5000: skipped" in printed
    assert "length 1024: only 1 windows fit (asked for 32)" in printed  # one val document of 1227 tokens
    assert result["lengths"] == [32, 64, 1024]
    assert sorted({int(r["length"]) for r in read_csv(tmp_path / "x") if r["kind"] == "mean"}) == [32, 64, 1024]
    assert "| 32 (1x) | 64 (2x) | 1024 (32x) |" in printed


def test_tail_scores_the_same_last_tokens_at_every_length(runs, many_docs, tmp_path, capsys):
    out = tmp_path / "tail"
    result = extrapolate.main([runs[1], f"--data_dir={many_docs}", "--lengths=37,67,131,9000", "--tail=5",
                               "--num_windows=3", f"--out={out}", "--device=cpu"])
    assert "length 9000: skipped" in capsys.readouterr().out
    windows = result["windows"]
    assert list(windows) == [37, 67, 131] and all(len(s) == 3 for s in windows.values())
    for T, starts in windows.items():  # every window ends where the longest length's does
        assert np.array_equal(starts + T, windows[131] + 131)
    tokens, _ = load_split(many_docs, "val")
    model, _ = load_model(runs[1], "cpu")
    model.eval()
    mean = {int(r["length"]): float(r["loss"]) for r in read_csv(out) if r["kind"] == "mean"}
    assert not [r for r in read_csv(out) if r["kind"] == "position"]
    for T, starts in windows.items():  # the mean over the last 5 positions of the full-window losses
        full = extrapolate.window_losses(model, tokens, starts, T, 8, "cpu", torch.autocast("cpu", enabled=False))
        assert mean[T] == pytest.approx(full[-5:].sum().item() / (3 * 5), rel=1e-5)
    assert {int(r["n_tokens"]) for r in read_csv(out)} == {15}
    with pytest.raises(SystemExit, match="--tail=40 is longer than the shortest eval length 37"):
        extrapolate.main([runs[1], f"--data_dir={many_docs}", "--lengths=37", "--tail=40", f"--out={out}", "--device=cpu"])


def test_tune_scale_holds_its_documents_out(runs, many_docs, tmp_path, record):
    gpt, swan = runs
    args = [swan, gpt, f"--data_dir={many_docs}", "--lengths=32,256,1024", "--num_windows=6", "--device=cpu"]
    result = extrapolate.main(args + ["--tune_scale", f"--out={tmp_path / 't'}"])
    _, spans = load_split(many_docs, "val")
    assert len(result["tune_docs"]) == 3 and len(result["report_docs"]) == 8  # every 4th of 11
    assert set(result["tune_docs"]) | set(result["report_docs"]) == set(range(11))
    longest = int(np.argmax(spans[:, 1] - spans[:, 0]))
    assert longest in result["tune_docs"]
    for T, starts in result["windows"].items():  # reported windows: only in the other documents
        docs = inside(starts, T, spans)
        assert -1 not in docs and not set(docs) & set(result["tune_docs"]), T
        tuning = {tuple(result["tune_windows"].tolist())} if T == 1024 else set()
        assert {c[3] for c in record if c[2] == T} == {tuple(starts.tolist())} | tuning  # same for both models
        n_tune = len([r for r in read_csv(tmp_path / "t") if r["kind"] == "tune"])
        assert len([c for c in record if c[2] == T]) == 3 + n_tune * bool(tuning)  # swan off, tuned; gpt; the bases
    assert set(inside(result["tune_windows"], 1024, spans)) <= set(result["tune_docs"])
    rows = read_csv(tmp_path / "t")
    tune = {r["setting"]: float(r["loss"]) for r in rows if r["kind"] == "tune"}
    assert "off" in tune and {f"a={b:g}" for b in scaling.TUNE_GRID} <= set(tune)  # off, the grid, and more
    best = min(tune, key=tune.get)
    settings = {(r["model"], r["setting"]) for r in rows if r["kind"] == "mean"}
    assert settings == {("gpt", "off"), ("swan", "off"), ("swan", f"tuned ({best})")}
    tuned = [r for r in rows if r["setting"].startswith("tuned") and r["kind"] == "mean"]
    assert all(float(r["gain_over_off"]) == pytest.approx(tune["off"] - tune[best]) for r in tuned)
    # without tuning the same length draws on every document
    plain = extrapolate.main(args + [f"--out={tmp_path / 'p'}"])
    assert set(inside(plain["windows"][1024], 1024, spans)) & set(result["tune_docs"])


def other_runs(runs, tmp_path, **data_changes):
    """A copy of the gpt run whose checkpoint claims other training data."""
    ckpt = torch.load(os.path.join(runs[0], "ckpt.pt"), weights_only=True)
    ckpt["data"].update(data_changes)
    os.makedirs(tmp_path / "other", exist_ok=True)
    torch.save(ckpt, tmp_path / "other" / "ckpt.pt")
    return str(tmp_path / "other")


def test_runs_of_other_data(runs, many_docs, tmp_path):
    gpt2 = other_runs(runs, tmp_path, tokenizer="gpt2", vocab_size=50257, data_dir="/no/such/data")
    with pytest.raises(SystemExit, match="different tokenizers"):
        extrapolate.main([runs[1], gpt2, f"--out={tmp_path / 'x'}"])
    moved = other_runs(runs, tmp_path, data_dir=many_docs)  # same tokenizer, another dataset
    with pytest.raises(SystemExit, match="different datasets"):
        extrapolate.main([runs[1], moved, f"--out={tmp_path / 'x'}"])
    result = extrapolate.main([runs[1], moved, f"--data_dir={many_docs}", "--lengths=32", f"--out={tmp_path / 'x'}"])
    assert result["lengths"] == [32]


@pytest.mark.parametrize("args,message", [
    ([], "at least one run directory"),
    (["RUN", "--bogus=1"], "unknown setting 'bogus'"),
    (["RUN", "--num_windows=0"], "--num_windows must be >= 1"),
    (["RUN", "--tail=-1"], "--tail=-1 must be >= 0"),
    (["RUN", "--batch_size=x"], "not a valid int"),
    (["RUN", "--lengths=32,abc"], "--lengths='32,abc' is not a comma-separated list"),
    (["RUN", "--lengths=0,32"], "--lengths"),
    (["RUN", "--lengths=32", "--max_len=64"], "not both"),
    (["RUN", "--max_len=16"], "below the training length"),
    (["RUN", "--scale_base=off,1"], "--scale_base='off,1'"),
    (["RUN", "--scale_base=big"], "bases > 1 or off"),
    (["RUN", "--task=needles"], "--task must be loss or retrieval"),
    (["RUN", "--device=tpu"], "--device must be"),
    (["RUN", "--tune_scale"], "needs at least 2 val documents"),
    (["RUN", "--lengths=5000,9000"], "no length fits"),
    (["RUN", "--data_dir=/no/such/dir"], "not a prepared dataset"),
    (["RUN", "--data_dir=OTHER"], "tokenized differently"),
    (["/no/such/run"], "no checkpoint at"),
    (["RUN", "--out=CORRUPT/x"], "cannot create"),
    (["CORRUPT"], "corrupt or not a checkpoint"),
])
def test_bad_input_is_one_line(runs, tiny_data, tmp_path, args, message):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(open(os.path.join(runs[1], "ckpt.pt"), "rb").read()[:5000])
    subs = {"RUN": runs[1], "CORRUPT": str(corrupt), "--out=CORRUPT/x": f"--out={corrupt}/x"}
    if any("OTHER" in a for a in args):
        subs["--data_dir=OTHER"] = "--data_dir=" + copy_dataset(tiny_data, tmp_path / "other", vocab_size=400)
    with pytest.raises(SystemExit, match=message) as e:
        extrapolate.main([f"--out={tmp_path / 'x'}", "--device=cpu"] + [subs.get(a, a) for a in args])
    assert str(e.value).startswith("error: ") and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "x.csv")


def test_command_line_error_has_no_traceback(runs):
    out = subprocess.run([sys.executable, "extrapolate.py", runs[1], "--num_windows=many"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr.strip() == "error: --num_windows='many' is not a valid int"
