"""Retrieval: the scorer against a hand-built case, the training mix in get_batch, and
extrapolate.py --task=retrieval end to end on tiny runs, with its errors."""

import csv
import os

import matplotlib.image
import numpy as np
import pytest
import torch

import extrapolate
import retrieval
import train
from common import autocast_for
from data.prepare import load_split, load_tokenizer
from data.tasks import TaskMaker
from model import GPT, GPTConfig
from train_config import build_configs


class AnswerStub(torch.nn.Module):
    """A "model" that predicts the answer of each example it is given, except at the answer
    positions listed in `wrong` (example index -> answer token index), where it predicts token 0."""

    def __init__(self, examples, wrong, vocab):
        super().__init__()
        self.examples, self.wrong, self.vocab = examples, wrong, vocab

    def forward(self, idx, last=1):
        logits = torch.zeros(idx.shape[0], last, self.vocab)
        for row in range(idx.shape[0]):
            e = next(i for i, e in enumerate(self.examples) if torch.equal(torch.from_numpy(e.tokens[:-1]), idx[row]))
            answer = self.examples[e].tokens[self.examples[e].answer[0]:]
            for k, token in enumerate(answer):  # logits position last - len(answer) + k predicts token k
                logits[row, last - len(answer) + k, 0 if k in self.wrong.get(e, ()) else token] = 5.0
        return logits, None


@pytest.fixture(scope="module")
def maker_and_val(tiny_data):
    tokens, spans = load_split(tiny_data, "val")
    return TaskMaker(load_tokenizer(tiny_data)), tokens, spans


def test_score_is_exact_match_of_every_answer_token(maker_and_val):
    maker, tokens, spans = maker_and_val
    rng = np.random.default_rng(5)
    examples = [maker.make(task, 401, tokens, spans, rng, num_keys=keys)
                for task, keys in [("passkey", 1), ("multikey", 3), ("multivalue", 3), ("passkey", 1), ("multikey", 5)]]
    lengths = [e.answer[1] - e.answer[0] for e in examples]
    wrong = {1: {0}, 2: {lengths[2] - 1}, 4: set(range(lengths[4]))}  # the first, the last, every token wrong
    stub = AnswerStub(examples, wrong, 300)
    for batch_size in (1, 2, 5):  # answers of different lengths in one batch
        correct, loss = retrieval.score(stub, examples, "cpu", torch.autocast("cpu", enabled=False), batch_size)[:2]
        assert correct.tolist() == [True, False, False, True, False]
        # a right token costs -log softmax(5 at one of 300) = log(299 + e^5) - 5; a wrong one 5 more
        right = np.log(299 + np.exp(5)) - 5
        expect = [right, right + 5 / lengths[1], right + 5 / lengths[2], right, right + 5]
        assert loss == pytest.approx(expect, rel=1e-5)


class OrderStub(torch.nn.Module):
    """A "model" that, after a prompt of any length, writes `continuation` (token ids): its logits
    point at them position by position, and generate() returns them. Counts its generate calls."""

    def __init__(self, continuation, vocab, prompt, answer_length):
        super().__init__()
        self.continuation, self.vocab, self.generated = continuation, vocab, 0
        self.prompt, self.answer_length = prompt, answer_length  # what generate() must be asked

    def forward(self, idx, last=1):
        logits = torch.zeros(idx.shape[0], last, self.vocab)
        for k, token in enumerate(self.continuation[:last]):  # the answer starts `last` positions from the end
            logits[:, k, token] = 5.0
        return logits, None

    def generate(self, idx, max_new_tokens, temperature):
        assert temperature == 0 and max_new_tokens == self.answer_length + retrieval.SPARE_TOKENS
        assert (idx == torch.from_numpy(self.prompt)).all()  # every row: the question's end, no answer token
        self.generated += 1
        tail = self.continuation + [self.continuation[-1]] * (max_new_tokens - len(self.continuation))
        return torch.cat([idx, torch.tensor([tail] * idx.shape[0])], dim=1)


def test_multivalue_counts_any_order_of_its_values_and_says_how_an_answer_is_wrong(maker_and_val):
    maker, tokens, spans = maker_and_val
    enc = maker.enc
    example = maker.make("multivalue", 401, tokens, spans, np.random.default_rng(3), num_keys=3)
    start, end = example.answer
    values = retrieval.NUMBER.findall(enc.decode(example.tokens[start:end].tolist()))
    assert len(values) == 3 and len(set(values)) == 3

    def written(numbers):  # an answer as the task writes one: " a, b and c"
        return enc.encode_ordinary(f" {numbers[0]}, {numbers[1]} and {numbers[2]}")

    autocast = torch.autocast("cpu", enabled=False)
    # (what the model writes, right, decoded, share of the values among the first 3 numbers, a number repeated)
    cases = [(values, True, 0, 1, 0),  # the needles' order: teacher forcing suffices, nothing decoded
             ([values[2], values[0], values[1]], True, 1, 1, 0),  # another order: decoded, right
             ([values[1], values[0], "123456"], False, 1, 2 / 3, 0),  # a number that is not a value
             (["king", values[0], values[1]], False, 1, 2 / 3, 0),  # a word first: two numbers written
             ([values[1], values[1], values[0]], False, 1, 2 / 3, 1)]  # one value twice: lost track of it
    for numbers, right, decoded, found, repeated in cases:
        stub = OrderStub(written(numbers) + enc.encode_ordinary("."), 300, example.tokens[:start], end - start)
        got = retrieval.score(stub, [example], "cpu", autocast, 1, enc)
        assert got.correct.tolist() == [right] and stub.generated == decoded
        assert got.values_found.tolist() == [pytest.approx(found)] and got.repeated.tolist() == [repeated]
        # without the tokenizer only the needles' order counts, and nothing is decoded
        plain = retrieval.score(stub, [example], "cpu", autocast, 1)
        assert plain.correct.tolist() == [numbers == values] and np.isnan(plain.values_found).all()
        assert stub.generated == decoded


class WritingStub(torch.nn.Module):
    """A "model" whose teacher-forced answers are all wrong (every logit points at token 0) and
    whose greedy decoding writes, for each row, the text `writes[i]` of the example i whose question
    that row is. Records the batch size of every generate call."""

    def __init__(self, examples, writes, enc):
        super().__init__()
        self.examples, self.writes, self.enc, self.calls = examples, writes, enc, []

    def forward(self, idx, last=1):
        logits = torch.zeros(idx.shape[0], last, self.enc.n_vocab)
        logits[..., 0] = 5.0
        return logits, None

    def generate(self, idx, max_new_tokens, temperature):
        self.calls.append(idx.shape[0])
        rows = []
        for prompt in idx:
            i = next(i for i, e in enumerate(self.examples)
                     if e.answer[0] == len(prompt) and torch.equal(torch.from_numpy(e.tokens[:len(prompt)]), prompt))
            text = self.enc.encode_ordinary(self.writes[i])[:max_new_tokens]
            rows.append(torch.cat([prompt, torch.tensor(text + [text[-1]] * (max_new_tokens - len(text)))]))
        return torch.stack(rows)


def multivalue_examples(maker_and_val, seed):
    maker, tokens, spans = maker_and_val
    rng = np.random.default_rng(seed)
    return [maker.make(task, 301, tokens, spans, rng, num_keys=keys)
            for task, keys in [("multivalue", 2), ("passkey", 1), ("multivalue", 2), ("multivalue", 3),
                               ("multivalue", 2), ("multikey", 2), ("multivalue", 3)]]


def test_failed_multivalue_answers_are_decoded_together_each_for_its_own_example(maker_and_val):
    enc = maker_and_val[0].enc
    examples = multivalue_examples(maker_and_val, 11)
    values = [retrieval.NUMBER.findall(enc.decode(e.tokens[e.answer[0]:e.answer[1]].tolist())) for e in examples]
    writes = {0: " {1} and {0}.", 2: " {0}, {0} and {1}.", 3: " {2}, {0} and {1}.", 4: " {0} and 123456.",
              6: " {1}, {1} and {1}."}
    writes = {i: w.format(*values[i]) for i, w in writes.items()}
    autocast = torch.autocast("cpu", enabled=False)
    spans_of = [e.answer for e in examples if e.task == "multivalue"]
    assert len(set(spans_of)) < len(spans_of)  # so some batch holds several answers
    nan = float("nan")
    for batch_size in (7, 3, 1):
        stub = WritingStub(examples, writes, enc)
        got = retrieval.score(stub, examples, "cpu", autocast, batch_size, enc)
        assert got.correct.tolist() == [True, False, False, True, False, False, False]
        np.testing.assert_allclose(got.values_found, [1, nan, 0.5, 1, 0.5, nan, 1 / 3])
        np.testing.assert_allclose(got.repeated, [0, nan, 1, 0, 0, nan, 1])
        expected = []
        for group in (examples[i:i + batch_size] for i in range(0, 7, batch_size)):
            spans = [e.answer for e in group if e.task == "multivalue"]
            expected += [spans.count(span) for span in dict.fromkeys(spans)]
        assert sorted(stub.calls) == sorted(expected)  # one generate call per answer span in each batch
    assert max(stub.calls) == 1 and max(expected) == 1  # the last pass, batches of one
    stub = WritingStub(examples, writes, enc)
    retrieval.score(stub, examples, "cpu", autocast, 7, enc)
    assert max(stub.calls) > 1  # in one batch of seven, some call decoded several answers


def test_decoding_answers_together_writes_what_decoding_each_alone_writes(maker_and_val):
    enc = maker_and_val[0].enc
    examples = multivalue_examples(maker_and_val, 12)
    torch.manual_seed(0)  # an untrained model: every answer fails teacher forcing and is decoded
    model = GPT(GPTConfig.from_arch("swan", vocab_size=enc.n_vocab, block_size=32, n_layer=2, n_head=2, n_embd=32,
                                    window=5)).eval()
    with torch.no_grad():  # large weights, so that what it writes depends on the prompt: rows mixed up would show
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(20)
    written, sizes = {}, []  # (batch size, prompt) -> the tokens decoded after it; rows per generate call
    generate = model.generate

    def recording(idx, *args, **kw):
        out = generate(idx, *args, **kw)
        sizes.append(idx.shape[0])
        for prompt, row in zip(idx, out):
            written[batch_size, tuple(prompt.tolist())] = row[len(prompt):].tolist()
        return out

    model.generate = recording
    autocast = torch.autocast("cpu", enabled=False)
    scores = {}
    for batch_size in (7, 1):
        scores[batch_size] = retrieval.score(model, examples, "cpu", autocast, batch_size, enc)
    together = {p: w for (b, p), w in written.items() if b == 7}
    alone = {p: w for (b, p), w in written.items() if b == 1}
    assert len(together) == 5 and together == alone
    assert len({tuple(w) for w in together.values()}) == 5  # five different answers: each row its own
    assert max(sizes) > 1  # and some generate call decoded several of them at once
    for field in ("correct", "answer_loss", "values_found", "repeated"):
        np.testing.assert_allclose(getattr(scores[7], field), getattr(scores[1], field), rtol=1e-5)


def test_examples_are_the_same_for_every_run_and_seeded_per_cell(maker_and_val):
    maker, tokens, spans = maker_and_val
    cells = [("passkey", 1, 201), ("multikey", 4, 301)]
    a = retrieval.build_examples(maker, cells, [0.0, 0.5], 3, tokens, spans, seed=7)
    b = retrieval.build_examples(maker, cells[::-1], [0.0, 0.5], 3, tokens, spans, seed=7)  # another order
    assert a.keys() == b.keys() and len(a) == 4
    for key in a:
        assert all(np.array_equal(x.tokens, y.tokens) for x, y in zip(a[key], b[key]))
        assert all(len(x.tokens) == key[2] + 1 for x in a[key])  # T + 1: T of input, the last is a target
    assert not np.array_equal(a["passkey", 1, 201, 0.0][0].tokens, a["passkey", 1, 201, 0.0][1].tokens)


def batch_args(tiny_data, **settings):
    cfg = build_configs([f"--data_dir={tiny_data}", "--batch_size=7", "--grad_accum=3", "--max_iters=100"]
                              + [f"--{k}={v}" for k, v in settings.items()])[0]
    meta, tokens, _, tasks = train.load_data(cfg, True, False)
    return cfg, tokens, tasks


def test_the_mix_replaces_a_fraction_of_the_batch_and_is_a_pure_function(tiny_data):
    plain_cfg, tokens, no_tasks = batch_args(tiny_data)
    cfg, _, tasks = batch_args(tiny_data, retrieval=0.3, retrieval_keys=1)
    assert no_tasks is None and isinstance(tasks[0], TaskMaker)
    replaced = 0
    for it in range(40):
        x0, y0, no_weights = train.get_batch(tokens, it, plain_cfg, 200, 0, "cpu", stream=0)
        x, y, weights = train.get_batch(tokens, it, cfg, 200, 0, "cpu", stream=0, tasks=tasks)
        assert no_weights is None and weights is None  # answers weigh as much as any token: no weights at all
        again = train.get_batch(tokens, it, cfg, 200, 0, "cpu", stream=0, tasks=tasks)
        assert torch.equal(x, again[0]) and torch.equal(y, again[1])  # resume sees the same batch
        assert x.shape == (21, 200) and torch.equal(x[:, 1:], y[:, :-1])
        changed = (x != x0).any(1)
        replaced += int(changed.sum())
        assert torch.equal(x[~changed], x0[~changed])  # the other rows are the text windows of a plain run
        assert changed.sum() in (6, 7)  # 0.3 * 21 = 6.3, rounded at random
    assert replaced / (40 * 21) == pytest.approx(0.3, abs=0.02)
    only_passkey, _, passkey_tasks = batch_args(tiny_data, retrieval=0.5, retrieval_tasks="passkey")
    x = train.get_batch(tokens, 3, only_passkey, 200, 0, "cpu", stream=0, tasks=passkey_tasks)[0]
    question = passkey_tasks[0].piece["\nWhat is the pass key? The pass key is"]
    rows = [r for r in x.tolist() if any(r[i:i + len(question)] == question for i in range(200 - len(question)))]
    assert len(rows) in (10, 11)  # every replaced row is a passkey example
    late, _, late_tasks = batch_args(tiny_data, retrieval=0.3, retrieval_keys=1, retrieval_start=0.5)
    x_early = train.get_batch(tokens, 49, late, 200, 0, "cpu", stream=0, tasks=late_tasks)[0]
    assert torch.equal(x_early, train.get_batch(tokens, 49, plain_cfg, 200, 0, "cpu", stream=0)[0])  # before 50: text only
    assert not torch.equal(train.get_batch(tokens, 50, late, 200, 0, "cpu", stream=0, tasks=late_tasks)[0],
                           train.get_batch(tokens, 50, plain_cfg, 200, 0, "cpu", stream=0)[0])


def test_the_mix_writes_multivalue_answers_in_the_form_asked(tiny_data):
    for form, last in (("and", " and"), ("commas", ",")):
        cfg, tokens, tasks = batch_args(tiny_data, retrieval=0.5, retrieval_tasks="multivalue", retrieval_keys=2,
                                       retrieval_list=form)
        assert tasks[0].list_last == last
        x = train.get_batch(tokens, 3, cfg, 200, 0, "cpu", stream=0, tasks=tasks)[0]
        question = tasks[0].piece["\nWhat are all the special magic numbers for"]
        texts = [tasks[0].enc.decode(r) for r in x.tolist() if any(r[i:i + len(question)] == question for i in range(200))]
        assert len(texts) in (10, 11)
        # two values each (retrieval_keys=2): " d1 and d2" or " d1, d2"; the inputs lack only the last token
        assert any(" and " in t.split("They are")[-1] for t in texts) == (form == "and")
    _, _, shuffled = batch_args(tiny_data, retrieval=0.5, retrieval_tasks="multivalue", retrieval_order="random")
    assert shuffled[0].random_order and not tasks[0].random_order  # load_data hands the order to the task maker


def test_answer_weights_mark_the_answers_and_weigh_the_objective(tiny_data):
    cfg, tokens, tasks = batch_args(tiny_data, retrieval=0.5, retrieval_tasks="passkey", retrieval_answer_weight=5)
    x, y, w = train.get_batch(tokens, 3, cfg, 200, 0, "cpu", stream=0, tasks=tasks)
    question = tasks[0].piece["\nWhat is the pass key? The pass key is"]
    assert w.shape == y.shape and w.mean().item() == pytest.approx(1.0)
    light = w.min().item()
    assert w.max().item() == pytest.approx(5 * light)  # two values: answers, and every other target
    heavy_rows = 0
    for row, weights in zip(x.tolist(), w):
        heavy = (weights > light).nonzero().flatten().tolist()
        asked = [i for i in range(200 - len(question)) if row[i:i + len(question)] == question]
        if not asked:
            assert heavy == []  # a text window: no answer to weigh
            continue
        heavy_rows += 1  # the targets after the question, to the end of the sequence: the answer
        assert heavy == list(range(asked[0] + len(question) - 1, 200))
    assert heavy_rows in (10, 11)
    # the objective: the mean of weight x cross-entropy; the loss it reports stays the plain mean
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=300, block_size=200, n_layer=1, n_head=2, n_embd=16))

    class Record:  # an optimizer that keeps the gradients it is asked to step with
        def step(self):
            self.grads = [p.grad.clone() for p in model.parameters()]

        def zero_grad(self, set_to_none=True):
            model.zero_grad(set_to_none=set_to_none)

    record = Record()
    loss = train.train_step(model, record, x, y, cfg, 1, autocast_for("cpu"), weights=w)
    per_token = model(x, y, reduction="none")[1]  # (21, 200)
    assert loss == pytest.approx(per_token.mean().item(), rel=1e-5)
    model.zero_grad()
    (per_token.double() * w.double()).mean().backward()
    assert max((a - p.grad).abs().max().item() for a, p in zip(record.grads, model.parameters())) < 1e-5


@pytest.mark.parametrize("args,message", [
    (["--retrieval=1"], "--retrieval=1.0 must be a fraction in [0, 1)"),
    (["--retrieval=0.2", "--retrieval_answer_weight=0"], "--retrieval_answer_weight=0.0 must be > 0"),
    (["--retrieval_answer_weight=4"], "--retrieval_answer_weight=4.0 weighs the needle tasks' answers; give a mix"),
    (["--retrieval=-0.1"], "must be a fraction in [0, 1)"),
    (["--retrieval_start=1.5"], "--retrieval_start=1.5 must be a fraction"),
    (["--retrieval=0.5", "--retrieval_tasks=passkey,cloze"], "--retrieval_tasks: unknown task 'cloze'"),
    (["--retrieval=0.5", "--block_size=32"], "--retrieval with --retrieval_keys=4 needs block_size >= "),
    (["--retrieval=0.5", "--retrieval_keys=1", "--retrieval_values=9", "--block_size=100"],
     "--retrieval with --retrieval_values=9 needs block_size >= "),
    (["--retrieval=0.5", "--retrieval_values=-1"], "--retrieval_values=-1 must be >= 0"),
    (["--retrieval_values=2"], "--retrieval_values=2 caps the needle tasks' multivalue values; give a mix"),
    (["--retrieval=0.5", "--retrieval_list=or"], "--retrieval_list must be and or commas, got 'or'"),
    (["--retrieval_list=commas"], "--retrieval_list=commas sets the form of the needle tasks' multivalue answers; give a mix"),
    (["--retrieval=0.5", "--retrieval_order=sorted"], "--retrieval_order must be needles or random, got 'sorted'"),
    (["--retrieval_order=random"], "--retrieval_order=random orders the needle tasks' multivalue answers; give a mix"),
])
def test_mix_errors_are_one_line(tiny_args, tmp_path, args, message):
    with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace(")", r"\)")) as e:
        train.main(tiny_args + [f"--out_dir={tmp_path}"] + args)
    assert "\n" not in str(e.value)


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    """A gpt and a swan (L = 192), trained briefly with the mix (the accuracy is not the point)."""
    base = tmp_path_factory.mktemp("runs")
    for arch in ("gpt", "swan"):
        train.main([f"--data_dir={tiny_data}", f"--out_dir={base / arch}", f"--arch={arch}", "--n_layer=2",
                    "--n_head=2", "--n_embd=32", "--block_size=192", "--window=16", "--batch_size=4",
                    "--max_iters=6", "--eval_interval=6", "--eval_iters=1", "--sample_tokens=0", "--device=cpu",
                    "--retrieval=0.5", "--retrieval_keys=1"])
    return str(base / "gpt"), str(base / "swan")


def test_end_to_end_on_the_cpu_writes_csv_and_png(runs, tmp_path):
    out = str(tmp_path / "needles")
    args = [*runs, "--task=retrieval", "--lengths=320,500", "--tasks=passkey,multikey", "--num_keys=2,3",
            "--depths=0,0.5", "--trials=3", "--scale_base=off,64", "--device=cpu", f"--out={out}"]
    result = extrapolate.main(args)
    rows = list(csv.DictReader(open(out + ".csv")))
    assert list(rows[0]) == ["run", "arch", "layer_pattern", "task", "num_keys", "length", "depth", "setting",
                             "scale_base", "accuracy", "n", "answer_loss", "values_found", "repeated",
                             "interior", "gain_over_off"]
    assert all(r["values_found"] == r["repeated"] == "" for r in rows)  # for multivalue only
    # gpt once, swan off and a=64; (passkey, multikey K=2, K=3) x 2 lengths x 2 depths
    assert len(rows) == 3 * 3 * 2 * 2
    assert {(r["run"], r["setting"]) for r in rows} == {("gpt", "off"), ("swan", "off"), ("swan", "a=64")}
    assert {(r["task"], r["num_keys"]) for r in rows} == {("passkey", "1"), ("multikey", "2"), ("multikey", "3")}
    assert all(r["n"] == "3" and 0 <= float(r["accuracy"]) <= 1 and float(r["answer_loss"]) > 0 for r in rows)
    swan = {(r["setting"], r["task"], r["num_keys"], r["length"], r["depth"]): float(r["answer_loss"])
            for r in rows if r["run"] == "swan"}
    assert any(swan["off", *k[1:]] != swan["a=64", *k[1:]] for k in swan if k[0] == "off")  # scaling acts
    height, width = matplotlib.image.imread(out + ".png").shape[:2]
    assert 700 <= width <= 800 and 600 <= height <= 700  # two heatmaps side by side above the accuracy panel
    assert result["lengths"] == [320, 500]


def test_tuning_uses_held_out_documents(runs, tiny_data, tmp_path, monkeypatch):
    from test_extrapolate import copy_dataset
    many = copy_dataset(tiny_data, tmp_path / "many", val_from="train")  # 11 documents: 3 held out
    seen = []
    real = retrieval.build_examples

    def spy(maker, cells, depths, trials, tokens, spans, seed):
        seen.append((spans.tolist(), seed))
        return real(maker, cells, depths, trials, tokens, spans, seed)

    monkeypatch.setattr(retrieval, "build_examples", spy)
    result = extrapolate.main([runs[1], "--task=retrieval", "--lengths=320", "--tasks=passkey", "--depths=0.5",
                               "--trials=2", "--tune_scale", f"--data_dir={many}", "--device=cpu",
                               f"--out={tmp_path / 'x'}"])
    (report_spans, _), (tune_spans, tune_seed) = seen
    assert len(report_spans) == 8 and len(tune_spans) == 3 and not {tuple(s) for s in report_spans} & {tuple(s) for s in tune_spans}
    settings = {r["setting"] for r in result["rows"]}
    assert "off" in settings and any(s.startswith("tuned (") for s in settings)
    tuned = [r for r in result["rows"] if r["setting"].startswith("tuned")]
    assert all(r["gain_over_off"] >= 0 and r["interior"] in (True, False) for r in tuned)  # off is a candidate
    assert len(result["tune_examples"]) == 2  # one task, one depth, two examples


def test_end_to_end_multivalue_rows_say_how_answers_are_wrong(runs, tmp_path, capsys):
    out = str(tmp_path / "mv")
    extrapolate.main([runs[1], "--task=retrieval", "--lengths=320", "--tasks=multivalue", "--depths=0,0.5",
                      "--trials=3", "--device=cpu", f"--out={out}"])
    rows = list(csv.DictReader(open(out + ".csv")))
    assert len(rows) == 2 and {r["task"] for r in rows} == {"multivalue"}
    for r in rows:  # 3 examples a cell: shares in thirds of (a quarter of the values each)
        found, repeated = float(r["values_found"]), float(r["repeated"])
        assert 0 <= found <= 1 and round(found * 12, 6) == round(found * 12) and repeated in (0, 1 / 3, 2 / 3, 1)
        assert float(r["accuracy"]) <= found  # an answer that is right found every value
    assert "| swan [swan NSSS] | off | multivalue: values found |" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["--tasks=passkey,treasure"], "unknown task 'treasure'"),
    (["--lengths=64"], "passkey with 1 key(s) needs lengths >= "),
    (["--num_keys=0"], "--num_keys='0' is not a comma-separated list"),
    (["--depths=0,1"], "depths in [0, 1)"),
    (["--trials=0"], "--trials must be >= 1"),
])
def test_retrieval_errors_are_one_line(runs, tmp_path, args, message):
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as e:
        extrapolate.main([runs[1], "--task=retrieval", "--device=cpu", f"--out={tmp_path / 'x'}"] + args)
    assert str(e.value).startswith("error: ") and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "x.csv")


def test_a_run_folder_without_a_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at"):
        extrapolate.main([str(tmp_path), "--task=retrieval", f"--out={tmp_path / 'x'}"])


def test_filler_of_another_tokenizer_is_refused(runs, tiny_data, tmp_path):
    from test_extrapolate import copy_dataset
    other = copy_dataset(tiny_data, tmp_path / "other", vocab_size=400)
    with pytest.raises(SystemExit, match="tokenized differently"):
        extrapolate.main([runs[1], "--task=retrieval", f"--data_dir={other}", f"--out={tmp_path / 'x'}"])
