"""Test setup shared by every test file: the repository root on sys.path, SIGINT handled (for the
Ctrl-C tests, also when pytest runs as a background job), and Triton's interpreter on machines
without a GPU (it must be chosen before triton is first imported)."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

# a shell without job control starts a background job with SIGINT ignored, and an ignored signal
# stays ignored in every process started from it: the tests that press Ctrl-C on a child need it
# handled, as in a terminal (a handled signal is reset to the default in a child)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared dataset of 12 small documents (300-token BPE), made once per test session."""
    from data.prepare import prepare
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    words = "the king and queen of a fair land spoke to their lords upon the hill at night".split()
    for d in range(12):
        lines = [" ".join(rng.choice(words, size=rng.integers(4, 10))).capitalize() + "." for _ in range(120)]
        (root / f"doc{d:02d}.txt").write_text("\n".join(lines))
    return prepare(str(root), out_dir=str(tmp_path_factory.mktemp("data")), vocab_size=300)


@pytest.fixture
def tiny_args(tiny_data):
    """train.py arguments for a model small enough to train in a second on the tiny data."""
    return [f"--data_dir={tiny_data}", "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32",
            "--window=8", "--batch_size=4", "--eval_iters=2", "--sample_tokens=0", "--device=cpu",
            "--log_interval=1", "--warmup_iters=2", "--learning_rate=1e-2"]


@pytest.fixture
def ctrl_c_when():
    """A function (proc, ready, settle=0): once ready() holds (waiting up to 60 s), and settle
    seconds later, Ctrl-C (SIGINT) to the process; returns its (stdout, stderr)."""
    def interrupt(proc, ready, settle=0.0):
        deadline = time.time() + 60
        while time.time() < deadline and not ready():
            time.sleep(0.2)
        time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        try:
            return proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a failing test leaves nothing running behind it
            proc.kill()
            proc.communicate()
            raise AssertionError(f"{' '.join(map(str, proc.args[1:3]))} ... still ran 60 s after Ctrl-C") from None
    return interrupt
