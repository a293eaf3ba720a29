"""conversion.py: the per-layer costs a conversion measures on its source, the pattern they give,
and train.py's conversion recipe (--nope_layers, --source_optimizer); results/conversion.py's gaps."""

import csv
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from checkpoint import load_model
from common import autocast_for
from conversion import distill_kl, layer_costs, measured_pattern, spread_pattern, teacher_windows
from data.prepare import prepare
from model import GPT, GPTConfig, KVCache, rope_tables
from train_config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def data_of_another_tokenizer(tmp_path):
    """A prepared dataset whose 280-token BPE is not the tiny data's 300-token one."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("a ship sailed over the grey sea at dawn with its crew. " * 400)
    (books / "b.txt").write_text("the crew came home over the sea at dusk and slept. " * 400)
    return prepare(str(books), out_dir=str(tmp_path / "other"), vocab_size=280)


def test_measured_pattern_puts_n_where_it_costs_least_against_s():
    cost_n = [0.5, 0.25, 0.375, 0.125, 0.75]
    cost_s = [0.0, 0.0, 0.25, 0.0, 0.125]  # N - S: 0.5, 0.25, 0.125, 0.125, 0.625 (exact in binary)
    assert measured_pattern(cost_n, cost_s, 2) == "SSNNS"  # the tie at 0.125 goes to both
    assert measured_pattern(cost_n, cost_s, 1) == "SSNSS"  # the earlier of the tie
    with pytest.raises(ValueError, match="at least one layer N and one S of 5"):
        measured_pattern(cost_n, cost_s, 5)


def test_spread_pattern_chooses_within_each_group_of_the_pattern():
    # 11 layers, pattern NSSS: groups 0-3, 4-7 and 8-10 (the last one partial, N at layer 8 in the
    # pattern: one N there too). The cheapest three overall are 8, 9, 10: all in the last group
    cost_n = [0.5, 0.25, 0.375, 0.625, 0.75, 0.5, 0.5, 0.875, 0.0625, 0.125, 0.1875]
    cost_s = [0.0] * 11
    assert measured_pattern(cost_n, cost_s, 3) == "SSSSSSSSNNN"
    assert spread_pattern(cost_n, cost_s, "NSSS") == "SNSSSNSSNSS"  # 1 of 0-3, 5 (tie with 6: the earlier) of 4-7, 8
    assert spread_pattern(cost_n, cost_s, "NSSN") == "SNNSSNNSNSS"  # two in each group of four; one in 8-10
    assert spread_pattern(cost_n, cost_s, "SNSS") == "SNSSSNSSNSS"  # where the pattern puts it does not matter
    assert spread_pattern(cost_n, [0.0] * 8 + [0.0625, 0.0, 0.0], "SSSN") == "SNSSSNSSSSS"  # 8-10: S S S, none


def test_layer_costs_are_zero_where_nothing_changes():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=37, n_layer=3, n_head=2, n_embd=16, layer_pattern="G", window=5))
    with torch.no_grad():  # layer 1 attends uniformly (q = 0): dropping its RoPE changes nothing;
        model.transformer.h[1].attn.c_attn.weight[:16].zero_()
        for layer in (0, 2):  # the others attend sharply, so RoPE's rotations matter
            model.transformer.h[layer].attn.c_attn.weight[:32] *= 30
    x = torch.randint(0, 50, (3, 37))
    batches = [(x[:, :-1], x[:, 1:])]
    cost_n, cost_s = layer_costs(model, batches, autocast_for("cpu"))
    assert abs(cost_n[1]) < 1e-6 and min(abs(cost_n[0]), abs(cost_n[2])) > 1e-4
    assert min(abs(c) for c in cost_s) > 1e-5  # a window of 5 in 36 tokens changes every layer
    assert [a.kind for a in (b.attn for b in model.transformer.h)] == ["G", "G", "G"] and model.training
    model.config.window = 36  # a window that covers every key: windowing changes nothing
    assert max(abs(c) for c in layer_costs(model, batches, autocast_for("cpu"))[1]) < 1e-6


def test_a_conversion_measures_its_layers_and_continues_the_moments(tiny_args, tmp_path, capsys):
    args = [a for a in tiny_args if not a.startswith("--n_layer")] + ["--n_layer=4"]
    train.main(args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=20", "--eval_interval=20"])
    capsys.readouterr()
    train.main(args + [f"--out_dir={tmp_path / 'swan'}", "--arch=swan", f"--init_from={tmp_path / 'gpt'}",
                       "--max_iters=3", "--eval_interval=3", "--source_optimizer", "--weight_decay=0.05"])
    out = capsys.readouterr().out
    ckpt = torch.load(tmp_path / "swan" / "ckpt.pt", weights_only=True)
    pattern = ckpt["model_config"]["layer_pattern"]
    assert len(pattern) == 4 and pattern.count("N") == 1 and set(pattern) == {"N", "S"}  # NSSS: one in four
    assert f"loss added to {tmp_path / 'gpt'} by each layer alone as N/S (0: " in out and f"layer_pattern={pattern}\n" in out
    costs = re.search(r"as N/S \((.*)\); layer_pattern", out)[1].split(", ")  # "0: +0.123/-0.004", ...
    cost_n, cost_s = zip(*[map(float, c.split(": ")[1].split("/")) for c in costs])
    assert len(costs) == 4 and max(map(abs, cost_n)) > 1e-6 and measured_pattern(cost_n, cost_s, 1) == pattern
    state = ckpt["optimizer"]
    assert state["state"][0]["step"].item() == 20 + 3  # the gpt's 20 AdamW steps, then 3 more
    assert [g["weight_decay"] for g in state["param_groups"]] == [0.05, 0.0]  # this run's setting, not the source's
    # --max_iters=0: the conversion alone, saved untrained: the source's weights, the measured pattern
    train.main(args + [f"--out_dir={tmp_path / 'as-is'}", "--arch=swan", f"--init_from={tmp_path / 'gpt'}",
                       "--max_iters=0"])
    as_is, source = (torch.load(tmp_path / run / "ckpt.pt", weights_only=True) for run in ("as-is", "gpt"))
    assert as_is["iter"] == 0 and as_is["model_config"]["layer_pattern"] == pattern
    assert all(torch.equal(as_is["model"][k], source["model"][k]) for k in source["model"])
    with pytest.raises(SystemExit, match="--max_iters must be >= 1 \\(0 only converts a run"):
        train.main(args + [f"--out_dir={tmp_path / 'x'}", "--max_iters=0"])
    with pytest.raises(SystemExit, match="--source_optimizer is for a conversion"):
        train.main(args + [f"--out_dir={tmp_path / 'x'}", "--source_optimizer"])
    # measured-spread with the pattern NSS over 4 layers: groups 0-2 (one N) and 3 (pattern N: N)
    train.main(args + [f"--out_dir={tmp_path / 'spread'}", "--arch=swan", f"--init_from={tmp_path / 'gpt'}",
                       "--max_iters=0", "--nope_layers=measured-spread", "--layer_pattern=NSS"])
    spread = torch.load(tmp_path / "spread" / "ckpt.pt", weights_only=True)["model_config"]["layer_pattern"]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("note: --nope_layers=measured-spread"))
    cost_n, cost_s = zip(*[map(float, c.split(": ")[1].split("/"))
                           for c in re.search(r"as N/S \((.*)\); layer_pattern", line)[1].split(", ")])
    assert spread[3] == "N" and spread[:3].count("N") == 1 and spread == spread_pattern(cost_n, cost_s, "NSS")
    with pytest.raises(SystemExit, match="--nope_layers must be pattern, measured or measured-spread, got 'first'"):
        train.main(args + [f"--out_dir={tmp_path / 'x'}", "--nope_layers=first"])


def test_the_summary_gives_gaps_to_scratch_swan(tmp_path):
    rows = []
    for model, losses in [("gpt", (3.80, 5.20, 5.70)), ("swan", (3.84, 3.76, 3.86)),
                          ("gpt2swan+layers-100", (3.90, 3.85, 3.94)), ("gpt2swan+layers-seed7-100", (3.88, 3.83, 3.92)),
                          ("gpt2swan+distill-adam-kl-seed11-40", (3.95, 3.9, 4.0)), ("gpt2swan+both-2L-200", (3.86, 3.8, 3.9)),
                          ("other", (1, 1, 1))]:
        for length, loss in zip((64, 512, 2048), losses):
            rows.append(dict(model=model, setting="off", kind="mean", length=length, loss=loss))
        rows.append(dict(model=model, setting="a=512", kind="mean", length=64, loss=0.0))  # scaled: not read
    with open(tmp_path / "loss.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["model", "setting", "kind", "length", "loss"])
        writer.writeheader()
        writer.writerows(rows)
    done = subprocess.run([sys.executable, "results/conversion.py", f"--losses={tmp_path / 'loss.csv'}",
                           f"--out={tmp_path / 'conv'}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = {r["model"]: r for r in csv.DictReader(open(tmp_path / "conv.csv"))}
    assert set(got) == {"gpt", "swan", "gpt2swan+layers-100", "gpt2swan+layers-seed7-100", "gpt2swan+distill-adam-kl-seed11-40",
                        "gpt2swan+both-2L-200"}
    assert [got["gpt2swan+distill-adam-kl-seed11-40"][k] for k in ("recipe", "seed", "steps")] == ["+distill-adam-kl", "11", "40"]
    assert [got["gpt2swan+both-2L-200"][k] for k in ("recipe", "seed", "steps")] == ["+both-2L", "1337", "200"]
    row = got["gpt2swan+layers-100"]
    assert row["recipe"] == "+layers" and row["seed"] == "1337" and float(row["fraction"]) == 0.05
    again = got["gpt2swan+layers-seed7-100"]  # the same recipe in another data order
    assert again["recipe"] == "+layers" and again["seed"] == "7" and round(float(again["gap_8L"]), 6) == 0.07
    assert [round(float(row[k]), 6) for k in ("gap_L", "gap_8L", "gap_32L", "rise_32L")] == [0.06, 0.09, 0.08, 0.04]
    assert round(float(got["gpt"]["gap_8L"]), 6) == 1.44 and os.path.getsize(tmp_path / "conv.png") > 10_000


def test_distill_kl_is_the_teachers_kl_to_the_model():
    torch.manual_seed(1)
    config = GPTConfig(vocab_size=37, block_size=16, n_layer=1, n_head=2, n_embd=16, layer_pattern="G")
    student, teacher = GPT(config), GPT(config)
    x = torch.randint(0, 37, (3, 11))
    logits = student(x, x)[0]
    p_t = teacher(x, x)[0].double().softmax(-1)
    log_p_s = logits.double().log_softmax(-1)
    want = (p_t * (p_t.log() - log_p_s)).sum(-1).mean()
    assert abs(distill_kl(logits, teacher, x, x).item() - want.item()) < 1e-6 and want > 1e-3
    assert abs(distill_kl(teacher(x, x)[0], teacher, x, x).item()) < 1e-6  # a model against itself
    # a teacher trained at 7 tokens teaches the first 7 positions of 11, and only those
    teacher.config.block_size = 7
    assert abs(distill_kl(logits, teacher, x, x).item() - (p_t * (p_t.log() - log_p_s)).sum(-1)[:, :7].mean().item()) < 1e-6


def test_teacher_windows_give_every_position_half_a_window_of_context():
    starts, window, offset = teacher_windows(11, 4)  # windows of 4, 2 apart, the last ending at 11
    assert starts.tolist() == [0, 2, 4, 6, 7]
    assert window.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4]
    assert offset.tolist() == [0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 3]
    assert (starts[window] + offset).tolist() == list(range(11))  # each position read where it is
    starts, window, offset = teacher_windows(67, 9)
    assert (starts[window] + offset).tolist() == list(range(67)) and starts[-1] == 67 - 9
    assert offset[9:].min() == 5 and offset.max() == 8  # past the first window: 6 to 9 tokens of context (windows 4 apart)


def test_windowed_distillation_teaches_every_position_from_its_window():
    torch.manual_seed(2)
    config = GPTConfig(vocab_size=29, block_size=16, n_layer=1, n_head=2, n_embd=16, layer_pattern="G")
    student, teacher = GPT(config), GPT(config)
    teacher.config.block_size = 5  # a teacher trained at 5 tokens, a sequence of 13
    x = torch.randint(0, 29, (2, 13))
    logits = student(x, x)[0]
    log_p_s = logits.double().log_softmax(-1)
    want = []
    for p, s in enumerate([0, 0, 0, 0, 0, 2, 2, 4, 4, 6, 6, 8, 8]):  # starts 0, 2, 4, 6, 8: the earliest holding p
        p_t = teacher(x[:, s:s + 5], x[:, s:s + 5])[0][:, p - s].double().softmax(-1)  # (2, vocab)
        want.append((p_t * (p_t.log() - log_p_s[:, p])).sum(-1))
    want = torch.stack(want, 1).mean()
    assert abs(distill_kl(logits, teacher, x, x, windows=True).item() - want.item()) < 1e-6 and want > 1e-3
    teacher.config.block_size = 16  # a sequence within the teacher's length reads as one window either way
    assert abs(distill_kl(logits, teacher, x, x, windows=True).item() - distill_kl(logits, teacher, x, x).item()) < 1e-7


def test_a_conversion_distills_from_its_source(tiny_args, tmp_path, capsys):
    train.main(tiny_args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=20", "--eval_interval=20"])
    gpt_val = torch.load(tmp_path / "gpt" / "ckpt.pt", weights_only=True)["val_loss"]
    convert = tiny_args + [f"--init_from={tmp_path / 'gpt'}", "--arch=swan", "--max_iters=6", "--eval_interval=6"]
    train.main(convert + [f"--out_dir={tmp_path / 'swan'}", f"--distill_from={tmp_path / 'gpt'}", "--grad_accum=2"])
    ckpt = torch.load(tmp_path / "swan" / "ckpt.pt", weights_only=True)
    assert ckpt["iter"] == 6
    assert ckpt["val_loss"] < gpt_val + 0.5  # it kept what the gpt knew
    assert ckpt["train_config"]["distill_from"] == os.path.abspath(tmp_path / "gpt")  # found again on resume
    # trained at 3x the teacher's 32 tokens, the teacher reading windows of 32: finite and learning
    train.main(convert + [f"--out_dir={tmp_path / 'swan3L'}", f"--distill_from={tmp_path / 'gpt'}", "--distill_windows",
                          "--block_size=96", "--batch_size=2"])
    long = torch.load(tmp_path / "swan3L" / "ckpt.pt", weights_only=True)
    assert long["train_config"]["distill_windows"] and long["val_loss"] < gpt_val + 0.5
    with pytest.raises(SystemExit, match=r"has vocab_size 300, the model 301: distillation compares"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--vocab_size=301", f"--distill_from={tmp_path / 'gpt'}"])
    with pytest.raises(SystemExit, match=r"--distill_weight=0.0 must be a weight in \(0, 1\]"):
        train.main(convert + [f"--out_dir={tmp_path / 'x'}", f"--distill_from={tmp_path / 'gpt'}", "--distill_weight=0"])


def test_conversions_that_cannot_be_are_refused_in_one_line(tiny_data, tiny_args, tmp_path):
    train.main(tiny_args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=2", "--n_layer=1"])
    convert = tiny_args + [f"--out_dir={tmp_path / 'swan'}", f"--init_from={tmp_path / 'gpt'}", "--arch=swan", "--n_layer=1"]
    with pytest.raises(SystemExit, match=r"layer_pattern=NSSS over 1 layer\(s\) leaves no choice of N and S layers; "
                                         r"use --nope_layers=pattern"):
        train.main(convert)
    # data of another tokenizer is refused before anything is measured (its ids would overrun the model's)
    other = data_of_another_tokenizer(tmp_path)
    with pytest.raises(SystemExit, match=r"ckpt.pt was trained with another tokenizer \(bpe 300"):
        train.main(convert + [f"--data_dir={other}"])
    # a model without optimizer state (as pretrained.py writes) has no moments to continue and no run to resume
    ckpt = torch.load(tmp_path / "gpt" / "ckpt.pt", weights_only=True)
    del ckpt["optimizer"]
    (tmp_path / "imported").mkdir()
    torch.save(ckpt, tmp_path / "imported" / "ckpt.pt")
    with pytest.raises(SystemExit, match=r"--source_optimizer: .*imported holds no optimizer state to continue"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--init_from={tmp_path / 'imported'}", "--arch=gpt",
                                "--source_optimizer", "--n_layer=1"])
    with pytest.raises(SystemExit, match=r"imported holds a model without optimizer state .*: it cannot be resumed; "
                                         r"start a run from it with --init_from="):
        train.main(["--init_from=resume", f"--out_dir={tmp_path / 'imported'}"])


def test_a_teacher_equal_to_the_model_leaves_the_cross_entropy_scaled(tiny_args):
    # KL(model || itself) = 0: the step's gradients are (1 - w) times those of the cross-entropy alone
    cfg = TrainConfig(batch_size=3, grad_accum=2, distill_weight=0.25, grad_clip=0)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=16))
    teacher = GPT(model.config)
    teacher.load_state_dict(model.state_dict())
    x = torch.randint(0, 40, (6, 17))

    class Record:  # an optimizer that keeps the gradients it is asked to step with
        def step(self):
            self.grads = [p.grad.clone() for p in model.parameters()]

        def zero_grad(self, set_to_none=True):
            model.zero_grad(set_to_none=set_to_none)

    with_teacher, alone = Record(), Record()
    loss = train.train_step(model, with_teacher, x[:, :-1], x[:, 1:], cfg, 1, autocast_for("cpu"), teacher)
    loss_alone = train.train_step(model, alone, x[:, :-1], x[:, 1:], cfg, 1, autocast_for("cpu"))
    assert abs(loss - loss_alone) < 1e-6  # the logged loss is the cross-entropy
    assert max((a - 0.75 * b).abs().max().item() for a, b in zip(with_teacher.grads, alone.grads)) < 1e-6


def test_distillation_settings_are_refused_in_one_line(tiny_data, tiny_args, tmp_path):
    with pytest.raises(SystemExit, match=r"--distill_weight=0.3 weighs a teacher; give it with --distill_from=RUN"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--distill_weight=0.3"])
    with pytest.raises(SystemExit, match=r"--distill_windows sets how a teacher reads long sequences; give it with --distill_from"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--distill_windows"])
    with pytest.raises(SystemExit, match=r"error: --distill_from: no checkpoint at .*nowhere"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--distill_from={tmp_path / 'nowhere'}"])
    # a teacher of another tokenizer, on this data
    other = data_of_another_tokenizer(tmp_path)
    args = [a for a in tiny_args if not a.startswith("--data_dir")]
    train.main(args + [f"--data_dir={other}", f"--out_dir={tmp_path / 'teacher'}", "--max_iters=1", "--vocab_size=300"])
    with pytest.raises(SystemExit, match=r"error: --distill_from: .*ckpt.pt was trained with another tokenizer"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--distill_from={tmp_path / 'teacher'}"])


def test_a_fading_rope_takes_n_layers_from_rope_to_none():
    # fraction 1: an N layer is the G layer it came from; None: the N layer; 0.5: neither, in between
    torch.manual_seed(0)
    swan = GPT(GPTConfig(vocab_size=40, block_size=67, n_layer=2, n_head=2, n_embd=16, layer_pattern="NS", window=5)).eval()
    with torch.no_grad():  # sharp attention, so that positions matter to the logits
        for block in swan.transformer.h:
            block.attn.c_attn.weight.mul_(30)
    gpt = GPT(GPTConfig(**{**vars(swan.config), "layer_pattern": "GS"})).eval()
    gpt.load_state_dict(swan.state_dict())
    x = torch.randint(0, 40, (3, 67))
    nope, rope = swan(x, last=67)[0], gpt(x, last=67)[0]
    assert (nope - rope).abs().max().item() > 0.1  # the two differ, so the checks below can fail
    assert torch.allclose(swan.set_rope_fade(1.0)(x, last=67)[0], rope, atol=1e-4)
    half = swan.set_rope_fade(0.5)(x, last=67)[0]
    assert min((half - nope).abs().max().item(), (half - rope).abs().max().item()) > 0.01
    # the fraction multiplies every angle p * rope_base^(-2i/hd): checked against float64 by hand
    cos, sin = rope_tables(67, 8, 10000.0, "cpu", torch.tensor(0.3))
    angles = torch.arange(67, dtype=torch.float64)[:, None] * 10000.0 ** -(torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    assert torch.allclose(cos.double(), (0.3 * angles).cos(), atol=1e-5) and torch.allclose(sin.double(), (0.3 * angles).sin(), atol=1e-5)
    cache = KVCache(swan.config, 3, 80, "cpu")
    with pytest.raises(RuntimeError, match="a fading RoPE is for training"):
        swan(x, cache=cache)
    with pytest.raises(RuntimeError, match="a fading RoPE is for training"):
        swan.decoder(cache)
    assert torch.allclose(swan.set_rope_fade(0)(x, last=67)[0], nope)  # 0 is None: no RoPE at all
    assert swan.rope_fade is None
    with pytest.raises(ValueError, match=r"rope fade must be a fraction in \[0, 1\] or None, got 1.5"):
        swan.set_rope_fade(1.5)


def test_rope_fade_goes_linearly_to_zero_over_its_fraction_of_the_run(tiny_args, tmp_path):
    cfg = TrainConfig(max_iters=20, rope_fade=0.5)
    assert [train.rope_fraction(it, cfg) for it in (0, 5, 9, 10, 19)] == pytest.approx([1.0, 0.5, 0.1, 0.0, 0.0])
    assert train.rope_fraction(3, TrainConfig(max_iters=20)) == 0.0
    with pytest.raises(SystemExit, match=r"--rope_fade fades out the RoPE a conversion's N layers had"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--rope_fade=0.5"])
    with pytest.raises(SystemExit, match=r"--rope_fade=1.0 must be a fraction of max_iters in \[0, 1\)"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--rope_fade=1"])
    # only RoPE a layer had can fade: not from a swan's N layers, and not into a pattern without N
    train.main(tiny_args + [f"--out_dir={tmp_path / 'swan'}", "--arch=swan", "--max_iters=1", "--n_layer=4"])
    with pytest.raises(SystemExit, match=r"--rope_fade: layer\(s\) 0 of .*swan had no RoPE to fade out \(N already\)"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--init_from={tmp_path / 'swan'}", "--arch=swan",
                                "--n_layer=4", "--nope_layers=pattern", "--rope_fade=0.5"])
    with pytest.raises(SystemExit, match=r"--rope_fade fades the RoPE out of N layers; layer_pattern=S has none"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--init_from={tmp_path / 'swan'}", "--arch=swa",
                                "--n_layer=4", "--rope_fade=0.5"])


def test_a_conversion_with_a_fading_rope_ends_without_it_and_resumes_exactly(tiny_args, tmp_path, capsys):
    train.main(tiny_args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=10", "--eval_interval=10"])
    convert = tiny_args + [f"--init_from={tmp_path / 'gpt'}", "--arch=swan", "--max_iters=6", "--eval_interval=6",
                           "--nope_layers=pattern", "--rope_fade=0.5"]
    train.main(convert + [f"--out_dir={tmp_path / 'whole'}"])
    train.main(convert + [f"--out_dir={tmp_path / 'parts'}", "--stop_at=2"])  # stopped mid-fade (fraction 1/3)
    capsys.readouterr()
    load_model(tmp_path / "parts")  # what extrapolate.py and sample.py load: the note says what is lost
    assert "was saved at iteration 2 of a --rope_fade conversion" in capsys.readouterr().err
    train.main(["--init_from=resume", f"--out_dir={tmp_path / 'parts'}"])
    whole, parts = (torch.load(tmp_path / run / "ckpt.pt", weights_only=True) for run in ("whole", "parts"))
    load_model(tmp_path / "whole")
    assert "saved at iteration" not in capsys.readouterr().err  # a finished fade: nothing to say
    assert whole["train_config"]["rope_fade"] == 0.5 and whole["iter"] == parts["iter"] == 6
    assert all(torch.equal(whole["model"][k], parts["model"][k]) for k in whole["model"])
    # and the fade changed the run: the same conversion without it ends elsewhere
    train.main([a for a in convert if a != "--rope_fade=0.5"] + [f"--out_dir={tmp_path / 'abrupt'}"])
    abrupt = torch.load(tmp_path / "abrupt" / "ckpt.pt", weights_only=True)
    assert abs(abrupt["val_loss"] - whole["val_loss"]) > 1e-4


def test_a_conversion_can_train_its_n_layers_alone_first(tiny_args, tmp_path):
    train.main(tiny_args + [f"--out_dir={tmp_path / 'gpt'}", "--arch=gpt", "--max_iters=4", "--n_layer=4"])
    source = torch.load(tmp_path / "gpt" / "ckpt.pt", weights_only=True)["model"]
    convert = tiny_args + [f"--init_from={tmp_path / 'gpt'}", "--arch=swan", "--n_layer=4", "--nope_layers=pattern",
                           "--max_iters=4", "--eval_interval=4"]
    in_n_block = re.compile(r"transformer\.h\.0\.")  # NSSS over 4 layers: layer 0 is the only N layer
    train.main(convert + [f"--out_dir={tmp_path / 'alone'}", "--converted_first=0.9"])  # iterations 0-3 < 3.6: all
    alone = torch.load(tmp_path / "alone" / "ckpt.pt", weights_only=True)["model"]
    for name, value in alone.items():
        assert torch.equal(value, source[name]) != bool(in_n_block.match(name)), name  # N block trained, the rest not
    train.main(convert + [f"--out_dir={tmp_path / 'half'}", "--converted_first=0.5"])  # iterations 2 and 3 train all
    half = torch.load(tmp_path / "half" / "ckpt.pt", weights_only=True)["model"]
    assert not any(torch.equal(value, source[name]) for name, value in half.items())
    with pytest.raises(SystemExit, match=r"--converted_first trains a conversion's N layers alone first"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", "--converted_first=0.5"])
    with pytest.raises(SystemExit, match=r"--converted_first trains the N layers alone first; layer_pattern=S has none"):
        train.main(tiny_args + [f"--out_dir={tmp_path / 'x'}", f"--init_from={tmp_path / 'gpt'}", "--arch=swa",
                                "--n_layer=4", "--converted_first=0.5"])
