"""sample.py: prints samples from a checkpoint; bad input is one line, never a traceback."""

import os
import random
import subprocess
import sys

import pytest
import torch

import sample
import train
from data.prepare import prepare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run_dir(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train.main([f"--data_dir={tiny_data}", f"--out_dir={out}", "--n_layer=2", "--n_head=2", "--n_embd=32",
                "--block_size=32", "--window=8", "--batch_size=8", "--max_iters=80", "--eval_interval=80",
                "--learning_rate=1e-2", "--warmup_iters=5", "--sample_tokens=0", "--device=cpu"])
    return out


def test_samples_past_the_training_length(run_dir, capsys):
    # 100 new tokens from a model trained at 32; scaling on (the model has N layers)
    sample.main([f"--out_dir={run_dir}", "--start=The king", "--num_samples=2", "--max_new_tokens=100",
                 "--scale_base=64", "--scale_from_L", "--device=cpu"])
    texts = capsys.readouterr().out.split("-" * 60 + "\n")[:2]
    assert all(t.startswith("The king") for t in texts)
    assert all(len(t.split()) > 20 for t in texts)
    vocabulary = set("the king and queen of a fair land spoke to their lords upon hill at night".split())
    words = [w.strip(".").lower() for t in texts for w in t.split()]
    assert sum(w in vocabulary for w in words) / len(words) > 0.8  # it learned the corpus' words


def test_prompt_from_file_and_greedy_is_deterministic(run_dir, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("The queen spoke")
    args = [f"--out_dir={run_dir}", f"--start=FILE:{prompt}", "--num_samples=1", "--max_new_tokens=40", "--temperature=0"]
    sample.main(args)
    first = capsys.readouterr().out
    sample.main(args + ["--seed=7"])
    assert first.startswith("The queen spoke") and capsys.readouterr().out == first
    sample.main(args + ["--echo=false"])  # the continuation alone, after a line giving the prompt's size
    note, rest = capsys.readouterr().out.split("\n", 1)
    assert note.startswith("(a prompt of ") and first == "The queen spoke" + rest


def test_bad_input(run_dir, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run_dir / "ckpt.pt").read_bytes()[:5000])
    bigger_vocab = prepare(tiny_source(tmp_path), out_dir=str(tmp_path / "other"), vocab_size=400)
    cases = [
        ([f"--out_dir={tmp_path / 'nothing'}"], "no checkpoint at"),
        ([f"--out_dir={corrupt}"], "corrupt or not a checkpoint"),
        ([f"--out_dir={run_dir}", f"--data_dir={bigger_vocab}"], "not the tokenizer this checkpoint"),
        ([f"--out_dir={run_dir}", f"--data_dir={tmp_path}"], "not a prepared dataset"),
        ([f"--out_dir={run_dir}", "--start=FILE:/no/such/file"], "cannot read the prompt file"),
        ([f"--out_dir={run_dir}", "--top_k=many"], "not a valid int"),
        ([f"--out_dir={run_dir}", "--max_new_tokens=0"], "must be >= 1"),
        ([f"--out_dir={run_dir}", "--scale_base=1"], "scale_base"),
        ([f"--out_dir={run_dir}", "--scale_from_L"], r"^error: --scale_from_L says where scaling begins; give the base too"),
        ([f"--out_dir={run_dir}", "--top_k=-3"], r"^error: --top_k=-3 must be >= 0 \(0 = no top-k cut\)$"),
        ([f"--out_dir={tmp_path / 'nothing'}", "--scale_base=0.5"],  # the setting is wrong, whatever the checkpoint
         r"^error: --scale_base=0.5 must be a number > 1 \(log\(a\) must be positive\) or off$"),
        ([f"--out_dir={run_dir}", "--device=tpu"], "--device must be"),
        (["--temperature"], "--key=value"),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit, match=message) as e:
            sample.main(args)
        assert "\n" not in str(e.value)
    out = subprocess.run([sys.executable, "sample.py", f"--out_dir={corrupt}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr and out.stderr.startswith("error:")
    out = subprocess.run([sys.executable, "sample.py", f"--out_dir={run_dir}", "--top_k=-3"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr == "error: --top_k=-3 must be >= 0 (0 = no top-k cut)\n"


def test_scale_base_on_a_model_without_n_layers_is_a_note(run_dir, tmp_path, capsys):
    # the same weights as an all-window model: scaling touches N layers only, so nothing changes
    ckpt = torch.load(run_dir / "ckpt.pt", weights_only=True)
    ckpt["model_config"]["layer_pattern"] = "S"
    torch.save(ckpt, tmp_path / "ckpt.pt")
    args = [f"--out_dir={tmp_path}", "--num_samples=1", "--max_new_tokens=45", "--temperature=0", "--device=cpu"]
    sample.main(args)
    plain = capsys.readouterr()
    sample.main(args + ["--scale_base=64"])
    scaled = capsys.readouterr()
    assert plain.err == ""
    assert scaled.err == "note: --scale_base scales N layers only; this model (S) has none, so it changes nothing\n"
    assert scaled.out == plain.out and len(plain.out.split()) > 10


def tiny_source(tmp_path):  # random letters: plenty of pairs for a 400-token BPE
    folder = tmp_path / "docs"
    folder.mkdir()
    rng = random.Random(0)
    for d in range(3):
        words = ("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 7))) for _ in range(3000))
        (folder / f"{d}.txt").write_text(" ".join(words))
    return str(folder)
