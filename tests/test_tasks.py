"""data/tasks.py: needle-in-a-haystack examples over the tiny prepared dataset (300-token BPE, CPU)."""
import re
from collections import Counter

import numpy as np
import pytest

from data.prepare import DataError, load_split, load_tokenizer
from data.tasks import SNAP, TASKS, WORDS, TaskMaker


@pytest.fixture(scope="module")
def setup(tiny_data):
    enc = load_tokenizer(tiny_data)
    return TaskMaker(enc), enc, load_split(tiny_data, "train")


def find(sequence, sub):
    """Every start at which the id list sub occurs in sequence."""
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(sequence), len(sub))
    return np.flatnonzero((windows == np.asarray(sub)).all(axis=1)).tolist()


def ids(enc, *pieces):
    """Concatenated ids of separately encoded pieces; a list of ints is taken as already encoded."""
    return [i for p in pieces for i in (enc.encode_ordinary(p) if isinstance(p, str) else p)]


@pytest.mark.parametrize("T", [107, 201, 333])
def test_passkey(setup, T):
    maker, enc, (tokens, spans) = setup
    ex = maker.make("passkey", T, tokens, spans, np.random.default_rng(T), depth=0.5)
    assert ex.tokens.shape == (T,) and ex.tokens.dtype == np.int64 and ex.answer[1] == T
    assert (ex.task, ex.num_keys) == ("passkey", 1)
    answer = ex.tokens[ex.answer[0]:].tolist()
    assert re.fullmatch(r" [1-9]\d{4}", enc.decode(answer))
    question = ids(enc, "\nWhat is the pass key? The pass key is")
    assert ex.tokens[ex.answer[0] - len(question):ex.answer[0]].tolist() == question
    needle = ids(enc, " The pass key is", answer, ". Remember it.", answer, " is the pass key.")
    assert find(ex.tokens, needle) == [round(ex.depth * T)]  # the answer's very ids, twice, in one needle


@pytest.mark.parametrize("T, K", [(201, 1), (333, 3), (695, 16)])
def test_multikey(setup, T, K):
    maker, enc, (tokens, spans) = setup
    ex = maker.make("multikey", T, tokens, spans, np.random.default_rng(K), num_keys=K)
    assert ex.tokens.shape == (T,) and ex.answer[1] == T and ex.num_keys == K
    text = enc.decode(ex.tokens[:ex.answer[0]].tolist())
    haystack, question = text.rsplit("\n", 1)
    needles = re.findall(r"The magic number for (\w+) is (\d{6})\.", haystack)
    assert len(needles) == K and len({w for w, _ in needles}) == K and len({x for _, x in needles}) == K
    asked = re.fullmatch(r"What is the magic number for (\w+)\? The magic number for \1 is", question).group(1)
    number = dict(needles)[asked]
    answer = ex.tokens[ex.answer[0]:].tolist()
    assert enc.decode(answer) == " " + number
    needle = ids(enc, " The magic number for", " " + asked, " is", answer, ".")
    assert find(ex.tokens, needle) == [round(ex.depth * T)]


@pytest.mark.parametrize("T, V", [(201, 1), (333, 3), (501, 4)])
def test_multivalue_lists_every_value_in_order(setup, T, V):
    maker, enc, (tokens, spans) = setup
    ex = maker.make("multivalue", T, tokens, spans, np.random.default_rng(V), depth=0.25, num_keys=V)
    assert ex.tokens.shape == (T,) and ex.answer[1] == T and ex.num_keys == V
    haystack = enc.decode(ex.tokens[:ex.answer[0]].tolist())
    needles = re.findall(r"One of the special magic numbers for (\w+) is (\d{6})\.", haystack)
    assert len(needles) == V and len({w for w, _ in needles}) == 1 and len({x for _, x in needles}) == V
    word = needles[0][0]
    assert haystack.endswith(f"\nWhat are all the special magic numbers for {word}? They are")
    values = [x for _, x in needles]
    listed = ", ".join(values[:-1]) + " and " + values[-1] if V > 1 else values[0]
    assert enc.decode(ex.tokens[ex.answer[0]:].tolist()) == " " + listed
    # each value's ids in the answer are the ids in its needle, and the first needle is the one at depth
    answer, starts = ex.tokens[ex.answer[0]:].tolist(), []
    for x in values:
        number = enc.encode_ordinary(" " + x)
        assert find(answer, number)
        starts += find(ex.tokens, ids(enc, " One of the special magic numbers for", " " + word, " is", number, "."))
    assert len(starts) == V and starts == sorted(starts) and starts[0] == round(ex.depth * T)


def test_multivalue_in_commas_needs_no_count(setup):
    # the "commas" form lists the same values with "," before the last one too; the haystack is the same
    maker, enc, (tokens, spans) = setup
    commas = TaskMaker(enc, "commas")
    for V in (1, 2, 4):
        a = maker.make("multivalue", 501, tokens, spans, np.random.default_rng(V), depth=0.25, num_keys=V)
        b = commas.make("multivalue", 501, tokens, spans, np.random.default_rng(V), depth=0.25, num_keys=V)
        values = re.findall(r"\d{6}", enc.decode(a.tokens[a.answer[0]:].tolist()))
        assert enc.decode(b.tokens[b.answer[0]:].tolist()) == " " + ", ".join(values)
        assert len(values) == V and len(b.tokens) == 501 and b.answer[1] == 501
        shift = (a.answer[1] - a.answer[0]) - (b.answer[1] - b.answer[0])  # " and" and "," may differ in ids
        assert shift == (len(enc.encode_ordinary(" and")) - len(enc.encode_ordinary(","))) * (V > 1)
    difference = len(enc.encode_ordinary(" and")) - len(enc.encode_ordinary(","))  # 0 in this tokenizer, 0 in most
    assert commas.min_length("multivalue", 4) == maker.min_length("multivalue", 4) - difference
    assert commas.min_length("multivalue", 1) == maker.min_length("multivalue", 1)  # one value: no separator at all
    with pytest.raises(DataError, match=r"unknown multivalue list form 'semicolons'; the forms are and, commas"):
        TaskMaker(enc, "semicolons")


def test_multivalue_in_random_order_lists_the_same_values_over_the_same_haystack(setup):
    maker, enc, (tokens, spans) = setup
    shuffled = TaskMaker(enc, "and", "random")
    orders = set()
    for seed in range(12):
        a = maker.make("multivalue", 501, tokens, spans, np.random.default_rng(seed), depth=0.25, num_keys=4)
        b = shuffled.make("multivalue", 501, tokens, spans, np.random.default_rng(seed), depth=0.25, num_keys=4)
        assert np.array_equal(a.tokens[:a.answer[0]], b.tokens[:b.answer[0]]) and b.answer[1] == 501
        listed = re.findall(r"\d{6}", enc.decode(a.tokens[a.answer[0]:].tolist()))  # the needles' order
        written = enc.decode(b.tokens[b.answer[0]:].tolist())
        values = re.findall(r"\d{6}", written)
        assert sorted(values) == sorted(listed) and len(values) == 4
        assert written == " " + ", ".join(values[:3]) + " and " + values[3]
        orders.add(tuple(listed.index(v) for v in values))
    assert len(orders) >= 6  # 12 draws of the 24 orders: the needles' order is not favoured
    # the order is drawn last, and only in the random form: the needles' form draws what it always drew
    needles_rng, random_rng = np.random.default_rng(5), np.random.default_rng(5)
    maker.make("multivalue", 501, tokens, spans, needles_rng, num_keys=4)
    shuffled.make("multivalue", 501, tokens, spans, random_rng, num_keys=4)
    needles_rng.permutation(4)
    assert needles_rng.bit_generator.state == random_rng.bit_generator.state
    passkey = shuffled.make("passkey", 301, tokens, spans, np.random.default_rng(3))  # other tasks: unchanged
    assert np.array_equal(passkey.tokens, maker.make("passkey", 301, tokens, spans, np.random.default_rng(3)).tokens)
    with pytest.raises(DataError, match=r"unknown multivalue order 'sorted'; the orders are needles, random"):
        TaskMaker(enc, "and", "sorted")


@pytest.mark.parametrize("task, K", [("passkey", 1), ("multikey", 4), ("multivalue", 3)])
def test_depth(setup, task, K):
    maker, enc, (tokens, spans) = setup
    T = 1001
    # moved at most to the nearest line end; a multikey needle may also have to step past another one
    tolerance = SNAP + (maker.min_length(task, 2) - maker.min_length(task, 1) if task == "multikey" else 0)
    for seed in range(10):
        middle = maker.make(task, T, tokens, spans, np.random.default_rng(seed), depth=0.5, num_keys=K)
        assert abs(middle.depth * T - 500.5) <= tolerance
        start = maker.make(task, T, tokens, spans, np.random.default_rng(seed), depth=0.0, num_keys=K)
        assert start.depth * T <= tolerance
        late = maker.make(task, T, tokens, spans, np.random.default_rng(seed), depth=0.7, num_keys=K)
        assert abs(late.depth * T - 700.7) <= tolerance
    # the needle lands just after a line end: the token before it ends a sentence
    assert maker.is_sentence_end[middle.tokens[round(middle.depth * T) - 1]]
    ends = [enc.decode_single_token_bytes(i).endswith((b".", b"!", b"?", b"\n")) for i in range(enc.n_vocab)]
    assert maker.is_sentence_end.tolist() == ends and sum(ends) == 5


def passkey_filler(enc, ex):
    """The tokens of a passkey example that are neither its needle nor its question and answer."""
    answer = ex.tokens[ex.answer[0]:].tolist()
    needle = ids(enc, " The pass key is", answer, ". Remember it.", answer, " is the pass key.")
    question = ids(enc, "\nWhat is the pass key? The pass key is")
    [start] = find(ex.tokens, needle)
    filler = np.concatenate([ex.tokens[:start], ex.tokens[start + len(needle):ex.answer[0] - len(question)]])
    assert len(filler) == len(ex.tokens) - len(needle) - len(question) - len(answer)
    return filler


def test_filler_is_one_contiguous_slice_of_the_given_documents(setup, tiny_data):
    maker, enc, (tokens, spans) = setup
    filler = passkey_filler(enc, maker.make("passkey", 333, tokens, spans, np.random.default_rng(5), depth=0.4))
    [at] = find(tokens, filler)
    assert any(s <= at and at + len(filler) <= e for s, e in spans)  # within one document
    # the longest document has 1308 tokens: a filler of 1501 - 91 tokens is a slice of the given
    # documents joined end to end, without the end-of-text tokens between them, and only of those
    some = spans[3:7]
    joined = np.concatenate([tokens[s:e] for s, e in some]).astype(np.int64)
    filler = passkey_filler(enc, maker.make("passkey", 1501, tokens, some, np.random.default_rng(5), depth=0.3))
    assert len(filler) == 1410 and len(find(joined, filler)) == 1 and enc.eot_token not in filler
    val_tokens, val_spans = load_split(tiny_data, "val")  # one document of 1227 tokens (and its end-of-text)
    with pytest.raises(DataError, match="the documents hold 1227 tokens, fewer than the 1410 filler tokens needed"):
        maker.make("passkey", 1501, val_tokens, val_spans, np.random.default_rng(5))


def test_deterministic(setup):
    maker, enc, (tokens, spans) = setup
    a, b, c = (maker.make("multikey", 401, tokens, spans, np.random.default_rng(s), num_keys=5) for s in (3, 3, 4))
    assert (a.tokens == b.tokens).all() and (a.answer, a.depth) == (b.answer, b.depth)
    assert (a.tokens != c.tokens).sum() > 100


def test_min_length(setup):
    maker, enc, (tokens, spans) = setup
    assert [maker.min_length(*a) for a in [("passkey",), ("multikey", 4), ("multikey", 16), ("multivalue", 4)]] == \
        [107, 239, 695, 300]  # the tiny tokenizer's; test_errors' messages name them
    needle = maker.min_length("multikey", 9) - maker.min_length("multikey", 8)
    assert needle == maker.min_length("multikey", 2) - maker.min_length("multikey", 1) > 20
    assert maker.min_length("multikey") == maker.min_length("multikey", 4)
    assert maker.min_length("multivalue") == maker.min_length("multivalue", 4)
    for task in TASKS:  # the bound holds whatever the digits: T == min_length always works
        T = maker.min_length(task, 2 if task != "passkey" else None)
        for seed in range(20):
            ex = maker.make(task, T, tokens, spans, np.random.default_rng(seed), num_keys=2 if task != "passkey" else None)
            assert len(ex.tokens) == T


@pytest.mark.parametrize("task, T, kwargs, message", [
    ("sudoku", 333, {}, "unknown task 'sudoku'; the tasks are passkey, multikey, multivalue"),
    ("passkey", 67, {}, "passkey needs at least 107 tokens, got T=67"),
    ("multikey", 601, {"num_keys": 16}, "multikey with K=16 needs at least 695 tokens, got T=601"),
    ("multivalue", 299, {}, "multivalue with V=4 needs at least 300 tokens, got T=299"),
    ("passkey", 333, {"depth": 1.0}, r"depth=1.0 must be in \[0, 1\)"),
    ("multikey", 333, {"depth": -0.1}, r"depth=-0.1 must be in \[0, 1\)"),
    ("multikey", 333, {"num_keys": 0}, "num_keys=0 must be at least 1"),
    ("passkey", 333, {"num_keys": 2}, "passkey has exactly one needle, got num_keys=2"),
    ("multikey", 99_999, {"num_keys": len(WORDS) + 1}, f"K={len(WORDS) + 1} needs {len(WORDS) + 1} distinct words"),
])
def test_errors(setup, task, T, kwargs, message):
    maker, enc, (tokens, spans) = setup
    with pytest.raises(DataError, match=message):
        maker.make(task, T, tokens, spans, np.random.default_rng(0), **kwargs)


def test_sample_mix(setup):
    maker, enc, (tokens, spans) = setup
    rng = np.random.default_rng(0)
    examples = [maker.sample(333, tokens, spans, rng, max_keys=3) for _ in range(300)]
    counts = Counter(ex.task for ex in examples)
    assert set(counts) == set(TASKS) and all(70 <= c <= 130 for c in counts.values()), counts
    assert {ex.num_keys for ex in examples if ex.task == "multikey"} == {1, 2, 3}
    assert {ex.num_keys for ex in examples if ex.task == "multivalue"} == {2, 3}
    assert all(len(ex.tokens) == 333 and ex.answer[1] == 333 and 0 <= ex.depth < 1 for ex in examples)
    depths = np.array([ex.depth for ex in examples if ex.task == "passkey"])
    assert depths.min() < 0.1 and depths.max() > 0.6  # spread over the haystack (which ends near 0.75)
    only = Counter(maker.sample(333, tokens, spans, rng, tasks=("multivalue",), max_keys=1).num_keys for _ in range(20))
    assert only == {2: 20}  # V is at least 2 even when max_keys is 1
    apart = [maker.sample(333, tokens, spans, rng, tasks=("multikey", "multivalue"), max_keys=5, max_values=3)
             for _ in range(120)]
    assert {ex.num_keys for ex in apart if ex.task == "multikey"} == {1, 2, 3, 4, 5}
    assert {ex.num_keys for ex in apart if ex.task == "multivalue"} == {2, 3}  # V capped apart from K
    with pytest.raises(DataError, match="max_keys, max_values >= 1"):
        maker.sample(333, tokens, spans, rng, max_keys=0)
    with pytest.raises(DataError, match="max_values=0"):
        maker.sample(333, tokens, spans, rng, max_values=0)
