"""
Synthetic retrieval tasks of the needle-in-a-haystack (RULER) family, over real book text: a few
"needles" (sentences that hold a random number) are hidden in filler taken from a prepared
dataset's token stream, and the sequence ends with a question whose answer ends the sequence.
Training swaps a fraction of its sequences for these; evaluation scores exact match of the answer
at lengths far beyond the training length.

    passkey     The pass key is 71432. Remember it. 71432 is the pass key.     (one needle)
                ... What is the pass key? The pass key is -> 71432
    multikey    The magic number for river is 503118.                          (K words, one asked)
                ... What is the magic number for river? The magic number for river is -> 503118
    multivalue  One of the special magic numbers for lantern is 200457.        (V needles, one word)
                ... What are all the special magic numbers for lantern? They are -> 200457, ... and 918240

    import numpy as np
    from data.prepare import load_split, load_tokenizer
    from data.tasks import TaskMaker
    tokens, spans = load_split("data/gutenberg", "val")
    maker = TaskMaker(load_tokenizer("data/gutenberg"))
    ex = maker.make("multikey", 4096, tokens, spans, np.random.default_rng(0), depth=0.25, num_keys=8)
    ex.tokens[ex.answer[0]:ex.answer[1]]   # the answer ids; a model is right if it generates exactly these

Every sequence is built from separately encoded pieces, so a number's ids in the answer are the
very ids it has in its needle (BPE would split digits differently in different contexts).
"""
from dataclasses import dataclass

import numpy as np

from data.prepare import DataError

TASKS = ("passkey", "multikey", "multivalue")
DEFAULT_KEYS = {"passkey": 1, "multikey": 4, "multivalue": 4}
DIGITS = {"passkey": 5, "multikey": 6, "multivalue": 6}
MIN_FILLER = 16  # a haystack of fewer tokens is no haystack
SNAP = 24  # a needle moves at most this many tokens to land just after a sentence or line end
SENTENCE_ENDS = (b".", b"!", b"?", b"\n")

# plain, distinct English words for the multikey and multivalue keys
WORDS = ("apple", "river", "lantern", "garden", "mountain", "candle", "window", "forest", "bridge", "island",
         "harbor", "meadow", "pepper", "silver", "thunder", "violin", "wagon", "basket", "castle", "dragon",
         "feather", "glacier", "hammer", "jacket", "kettle", "ladder", "marble", "needle", "orchard", "pillow",
         "quarry", "rabbit", "saddle", "tiger", "umbrella", "valley", "walnut", "yellow", "anchor", "blanket",
         "cabinet", "desert", "engine", "falcon", "ginger", "helmet", "insect", "jungle", "kitchen", "lemon",
         "mirror", "napkin", "oyster", "parrot", "rocket", "spider", "tunnel", "velvet", "whistle", "zebra",
         "copper", "button", "cherry", "pebble", "shadow", "timber", "carpet", "lobster", "compass", "meteor")

# each template is a tuple of text pieces; WORD and NUMBER are filled in per example
WORD, NUMBER = object(), object()
TEMPLATES = {
    "passkey": {"needle": (" The pass key is", NUMBER, ". Remember it.", NUMBER, " is the pass key."),
                "question": ("\nWhat is the pass key? The pass key is",)},
    "multikey": {"needle": (" The magic number for", WORD, " is", NUMBER, "."),
                 "question": ("\nWhat is the magic number for", WORD, "? The magic number for", WORD, " is")},
    "multivalue": {"needle": (" One of the special magic numbers for", WORD, " is", NUMBER, "."),
                   "question": ("\nWhat are all the special magic numbers for", WORD, "? They are")},
}
# multivalue's answer: " d1, d2, ... and dV" ("and": writing it needs the count V, to know which
# value is the last) or " d1, d2, ..., dV" ("commas": it does not)
LIST_SEPARATOR = ","
LIST_LAST = {"and": " and", "commas": ","}
# the order of multivalue's values in the answer: the needles' (which, past the lengths a model
# trained at, NoPE layers may no longer tell apart: they carry no positions) or a random one per
# example (then no order is to be learned, only which values were already written)
ORDERS = ("needles", "random")


@dataclass
class Example:
    tokens: np.ndarray  # (T,) int64, exactly the requested length
    answer: tuple  # (start, end): tokens[start:end] are the answer ids, end == T
    task: str
    depth: float  # where the asked needle starts (multivalue: the first value), as a fraction of T
    num_keys: int  # needles in the haystack


class TaskMaker:
    def __init__(self, enc, multivalue_list="and", multivalue_order="needles"):
        """enc: the tokenizer (tiktoken's interface); multivalue_list: the form of multivalue's
        answer, a key of LIST_LAST; multivalue_order: the order of its values, one of ORDERS."""
        if multivalue_list not in LIST_LAST:
            raise DataError(f"unknown multivalue list form {multivalue_list!r}; the forms are {', '.join(LIST_LAST)}")
        if multivalue_order not in ORDERS:
            raise DataError(f"unknown multivalue order {multivalue_order!r}; the orders are {', '.join(ORDERS)}")
        self.enc = enc
        self.list_last = LIST_LAST[multivalue_list]
        self.random_order = multivalue_order == "random"
        texts = [p for t in TEMPLATES.values() for part in t.values() for p in part if isinstance(p, str)]
        self.piece = {text: enc.encode_ordinary(text) for text in texts + [LIST_SEPARATOR, *LIST_LAST.values()]}
        self.word_ids = [enc.encode_ordinary(" " + w) for w in WORDS]
        self.is_sentence_end = np.zeros(enc.n_vocab, dtype=bool)  # (vocab,)
        for i in range(enc.n_vocab):
            try:
                self.is_sentence_end[i] = enc.decode_single_token_bytes(i).endswith(SENTENCE_ENDS)
            except KeyError:  # an id with no token (gaps in some vocabularies)
                pass

    def _fill(self, template, word, number=None):
        ids = []
        for p in template:
            ids += word if p is WORD else number if p is NUMBER else self.piece[p]
        return ids

    def _check(self, task, num_keys):
        if task not in TASKS:
            raise DataError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
        if num_keys is None:
            return DEFAULT_KEYS[task]
        if task == "passkey" and num_keys != 1:
            raise DataError(f"passkey has exactly one needle, got num_keys={num_keys}")
        if num_keys < 1:
            raise DataError(f"num_keys={num_keys} must be at least 1")
        if task == "multikey" and num_keys > len(WORDS):
            raise DataError(f"multikey with K={num_keys} needs {num_keys} distinct words; the word list has {len(WORDS)}")
        return int(num_keys)

    def min_length(self, task, num_keys=None):
        """The shortest T for which make() works: needles, question, answer and MIN_FILLER tokens.
        Each number is counted at its longest (a token per byte), whatever its digits."""
        n = self._check(task, num_keys)
        number = [0] * (1 + DIGITS[task])  # " " and the digits
        word = max(self.word_ids, key=len)
        needle = len(self._fill(TEMPLATES[task]["needle"], word, number))
        question = len(self._fill(TEMPLATES[task]["question"], word))
        answered = 1 if task == "multikey" else n  # multikey asks one of its numbers
        return n * needle + question + self._answer_length([number] * answered) + MIN_FILLER

    def _answer_length(self, numbers):
        n = len(numbers)
        return sum(map(len, numbers)) + len(self.piece[LIST_SEPARATOR]) * max(n - 2, 0) + len(self.piece[self.list_last]) * (n > 1)

    def make(self, task, T, tokens, spans, rng, depth=None, num_keys=None):
        """One Example of exactly T tokens; everything random is drawn from rng (a np.random.Generator)."""
        n = self._check(task, num_keys)
        if depth is not None and not 0 <= depth < 1:
            raise DataError(f"depth={depth} must be in [0, 1)")
        need = self.min_length(task, n)
        if T < need:
            keys = "" if task == "passkey" else f" with {'V' if task == 'multivalue' else 'K'}={n}"
            raise DataError(f"{task}{keys} needs at least {need} tokens, got T={T}")
        depth = rng.random() if depth is None else depth
        low = 10 ** (DIGITS[task] - 1)  # no leading zero
        numbers = [self.enc.encode_ordinary(f" {low + v}") for v in rng.choice(9 * low, size=n, replace=False)]
        words = [self.word_ids[w] for w in rng.choice(len(WORDS), size=n if task == "multikey" else 1, replace=False)]
        template = TEMPLATES[task]
        if task == "multikey":
            needles = [self._fill(template["needle"], w, x) for w, x in zip(words, numbers)]
            asked = int(rng.integers(n))
        else:  # the word (multivalue) or nothing (passkey) is shared; needle 0 is the one placed at depth
            needles = [self._fill(template["needle"], words[0], x) for x in numbers]
            asked = 0
        question = self._fill(template["question"], words[asked])
        answer_length = self._answer_length([numbers[asked]] if task == "multikey" else numbers)
        lengths = np.array([len(x) for x in needles])  # (n,)
        filler = self._filler(T - lengths.sum() - len(question) - answer_length, tokens, spans, rng)  # (F,)
        points = self._points(filler, lengths, asked, round(depth * T), task == "multivalue", rng)  # (n,)

        order = sorted(range(n), key=lambda i: (points[i], i != asked, i))  # at a tie the asked needle goes first
        parts, previous, start = [], 0, 0
        for i in order:
            parts.append(filler[previous:points[i]])
            if i == asked:
                start = sum(map(len, parts))
            parts.append(np.array(needles[i], dtype=np.int64))
            previous = points[i]
        if task == "multikey":
            answer = numbers[asked]
        else:  # every value, in the order the needles appear (or a random one, drawn last: the haystack stays the same)
            answer = []
            written = [order[k] for k in rng.permutation(n)] if self.random_order and task == "multivalue" else order
            for k, i in enumerate(written):
                answer += (self.piece[self.list_last] if k == n - 1 else self.piece[LIST_SEPARATOR]) if k else []
                answer += numbers[i]
        parts += [filler[previous:], np.array(question + answer, dtype=np.int64)]
        sequence = np.concatenate(parts)  # (T,)
        assert len(sequence) == T
        return Example(sequence, (T - len(answer), T), task, start / T, n)

    def _filler(self, length, tokens, spans, rng):
        """length contiguous tokens of one document long enough, else of the given documents
        joined end to end (never of documents outside spans: they may be held out)."""
        long_enough = np.flatnonzero(spans[:, 1] - spans[:, 0] >= length)
        if len(long_enough):
            doc_start, doc_end = spans[rng.choice(long_enough)]
            start = int(rng.integers(doc_start, doc_end - length + 1))
            return np.asarray(tokens[start:start + length], dtype=np.int64)
        total = int((spans[:, 1] - spans[:, 0]).sum())
        if total < length:
            raise DataError(f"the documents hold {total} tokens, fewer than the {length} filler tokens needed")
        joined = np.concatenate([np.asarray(tokens[s:e], dtype=np.int64) for s, e in spans])  # (total,)
        start = int(rng.integers(0, total - length + 1))
        return joined[start:start + length]

    def _snap(self, filler, point, target=None, before=lambda points: 0):
        """The point just after a sentence or line end within SNAP tokens of point, else point itself.
        Of several, the one whose needle starts nearest target (default: point) in the final sequence,
        where a needle at point p starts at p + before(p), before(p) being the needle tokens ahead of it."""
        low, high = max(point - SNAP, 1), min(point + SNAP, len(filler))
        ends = np.flatnonzero(self.is_sentence_end[filler[low - 1:high]]) + low  # points just after an end
        if len(ends) == 0:
            return point
        error = np.abs(ends + before(ends) - (point if target is None else target))
        return int(ends[np.argmin(error)])  # the first of equals: deterministic

    def _points(self, filler, lengths, asked, target, others_after, rng):
        """Insertion points in the filler (0..F) of every needle: the asked one so that it starts near
        target in the final sequence, the others at random points (after the asked one if others_after)."""
        F, n = len(filler), len(lengths)
        points = np.zeros(n, dtype=np.int64)
        others = [i for i in range(n) if i != asked]
        if others_after:  # nothing comes before the asked needle: its point is its start
            points[asked] = self._snap(filler, min(target, F))
            for i in others:
                points[i] = max(self._snap(filler, int(rng.integers(points[asked], F + 1))), points[asked])
            return points
        for i in others:
            points[i] = self._snap(filler, int(rng.integers(0, F + 1)))
        # with c other needles before it (the asked one goes first at a tie), the asked needle at point q
        # starts at q + before[c]; choose the c and q in its range that come closest to target
        sorted_points = np.sort(points[others])  # (n-1,)
        before = np.concatenate([[0], np.cumsum(lengths[others][np.argsort(points[others], kind="stable")])])  # (n,)
        lows = np.concatenate([[0], sorted_points + 1])
        highs = np.concatenate([sorted_points, [F]])
        best, best_error = 0, None
        for c in range(n):
            if lows[c] > highs[c]:
                continue
            q = int(np.clip(target - before[c], lows[c], highs[c]))
            if best_error is None or abs(q + before[c] - target) < best_error:
                best, best_error = q, abs(q + before[c] - target)
        points[asked] = self._snap(filler, best, target, lambda p: before[np.searchsorted(sorted_points, p)])
        return points

    def sample(self, T, tokens, spans, rng, tasks=TASKS, max_keys=4, max_values=None):
        """An Example for the training mix: task uniform among tasks, depth uniform in [0, 1),
        multikey K uniform in 1..max_keys, multivalue V uniform in 2..max(2, max_values), where
        max_values defaults to max_keys."""
        max_values = max_keys if max_values is None else max_values
        if not tasks or max_keys < 1 or max_values < 1:
            raise DataError(f"sample needs at least one task and max_keys, max_values >= 1, got tasks={tasks}, "
                            f"max_keys={max_keys}, max_values={max_values}")
        task = tasks[int(rng.integers(len(tasks)))]
        num_keys = {"passkey": 1, "multikey": int(rng.integers(1, max_keys + 1)),
                    "multivalue": int(rng.integers(2, max(2, max_values) + 1))}.get(task)
        return self.make(task, T, tokens, spans, rng, depth=rng.random(), num_keys=num_keys)
