"""
A conversion, train.py --init_from=RUN --arch=swan: what it keeps (the source's weights and
sizes), what it may learn from besides the data (the source's logits: distillation), and which
layers of the source become N (global, no positions) and which S (RoPE over a window).

SWAN's pattern puts N at the first layer of each group ("NSSS": layers 0, 4, ...), which suits a
model trained from scratch as swan. A trained GPT has already divided the work among its layers:
some attend locally, which a window barely changes; some attend far, which past L only an N layer
can still do; and some lean on RoPE's distances more than others. So ask the source model itself:
for each layer alone, the loss when its RoPE is dropped (it becomes N) and when it is windowed (S),
every other layer as trained. The layers where N costs least relative to S become N, as many as
the pattern asks for.
"""

from dataclasses import asdict

import torch
import torch.nn.functional as F

from checkpoint import check_tokenizer, load_model
from model import GPTConfig

SIZES = ("vocab_size", "n_layer", "n_head", "n_embd", "n_kv_head", "mlp", "mlp_hidden")  # what a conversion keeps, with the weights


def check_conversion(source, ckpt, model_settings, source_optimizer):
    """What a conversion cannot do, in one line, before anything is measured or trained."""
    before = asdict(GPTConfig(**ckpt["model_config"]))
    for key in SIZES:
        if model_settings.get(key, before[key]) != before[key]:
            raise SystemExit(f"error: --{key}={model_settings[key]}: a conversion keeps the sizes of {source} "
                             f"({key}={before[key]}); train from scratch for other sizes")
    if source_optimizer and "optimizer" not in ckpt:
        raise SystemExit(f"error: --source_optimizer: {source} holds no optimizer state to continue (an imported model?)")


def check_faded_layers(source, ckpt, config):
    """--rope_fade fades out the RoPE a conversion's N layers had in the source: each must have had it."""
    before = GPTConfig(**ckpt["model_config"])
    n_layers = [i for i in range(config.n_layer) if config.layer_kind(i) == "N"]
    if not n_layers:
        raise SystemExit(f"error: --rope_fade fades the RoPE out of N layers; layer_pattern={config.layer_pattern} has none")
    lacking = [str(i) for i in n_layers if before.layer_kind(i) == "N"]
    if lacking:
        raise SystemExit(f"error: --rope_fade: layer(s) {', '.join(lacking)} of {source} had no RoPE to fade out (N already)")


def conversion_note(source, ckpt, config):
    """One line: what the conversion keeps and what it changes."""
    before, after = asdict(GPTConfig(**ckpt["model_config"])), asdict(config)
    changes = [f"{k} {before[k]} -> {after[k]}" for k in after if k not in SIZES and before[k] != after[k]]
    return (f"--init_from={source}: keeps its weights and sizes ({', '.join(f'{k}={before[k]}' for k in SIZES)}); "
            f"changes {', '.join(changes) or 'nothing else'}")


# -----------------------------------------------------------------------------
# distillation: the converted model also learns the source's next-token distributions


def load_teacher(where, meta, data_dir, device):
    """The frozen model of the run in `where` (--distill_from), checked against the data's
    tokenizer before anything else is loaded or measured."""
    try:
        teacher, ckpt = load_model(where, device)
        check_tokenizer(ckpt, meta, where, data_dir)
    except SystemExit as e:  # name the setting: the teacher is not the run being trained
        raise SystemExit(f"error: --distill_from: {str(e.code).removeprefix('error: ')}")
    return teacher.eval().requires_grad_(False)


def ready_teacher(teacher, config, where, device, compile):
    """The teacher checked against the model it teaches, its RoPE tables built for the training
    length (before compiling, as for the model), compiled if the run compiles."""
    if teacher.config.vocab_size != config.vocab_size:
        raise SystemExit(f"error: --distill_from={where} has vocab_size {teacher.config.vocab_size}, "
                         f"the model {config.vocab_size}: distillation compares distributions over one vocabulary")
    teacher.rope_for(config.block_size, device)
    return torch.compile(teacher) if compile else teacher


def teacher_windows(T, n):
    """Where a teacher trained at n tokens reads a sequence of T > n tokens: windows of n tokens,
    half a window apart, the last one ending at T; (starts (windows,), window (T,), offset (T,)):
    each position is read in the earliest window that holds it, so that past the first n positions
    every one is read with more than half a window of context (n - n // 2 + 1 to n tokens, itself
    included)."""
    starts = list(range(0, T - n + 1, max(1, n // 2)))
    if starts[-1] != T - n:
        starts.append(T - n)
    starts = torch.tensor(starts)
    position = torch.arange(T)
    window = torch.searchsorted(starts, position - n, right=True)  # the first window with start > p - n holds p
    return starts, window, position - starts[window]


def distill_kl(logits, teacher, x, y, windows=False):
    """KL(teacher || model) per token, averaged: how far the model's next-token distributions are
    from the teacher's on the same inputs, in float32. logits (B, T, vocab) are the model's. A RoPE
    teacher predicts nothing worth learning past its training length n, so by default only the
    first n positions count (causal attention makes the teacher's logits there those of x cut),
    and a model trained longer (at 4 L, say) learns the rest from the data alone. windows=True
    lets the teacher teach every position: it reads x in windows of n (teacher_windows), as it was
    trained, and each position past n learns what the teacher predicts from more than the last
    half window of tokens."""
    n = min(x.shape[1], teacher.config.block_size)
    with torch.no_grad():
        if windows and x.shape[1] > n:
            starts, window, offset = teacher_windows(x.shape[1], n)  # host tensors: the slices need no sync
            reads = torch.stack([x[:, s:s + n] for s in starts.tolist()], 1)  # (B, windows, n)
            read = teacher(reads.flatten(0, 1), last=n)[0].unflatten(0, reads.shape[:2])  # (B, windows, n, vocab)
            target = read[:, window.to(x.device), offset.to(x.device)]  # (B, T, vocab)
        else:
            target = teacher(x[:, :n], last=n)[0]  # (B, n, vocab); no loss computed
        target = target.float().log_softmax(-1)
    taught = target.shape[1]  # the positions the teacher teaches: n, or with windows all T
    return F.kl_div(logits[:, :taught].float().log_softmax(-1), target, log_target=True, reduction="none").sum(-1).mean()


# -----------------------------------------------------------------------------
# which layers become N


@torch.no_grad()
def layer_costs(model, batches, autocast):
    """(cost_n, cost_s): per layer, the mean loss over batches [(x, y), ...] with that layer alone
    made N or S, minus the loss of the model as it is. The model's layers are left as they were."""
    attns = [block.attn for block in model.transformer.h]
    kinds = [attn.kind for attn in attns]
    was_training = model.training
    model.eval()

    def mean_loss():
        total = 0.0
        for x, y in batches:
            with autocast:
                total += model(x, y)[1].item()
        return total / len(batches)

    base = mean_loss()
    cost_n, cost_s = [], []
    try:
        for attn, kind in zip(attns, kinds):
            attn.kind = "N"  # Attention.forward reads its kind per call: RoPE off, no window
            cost_n.append(mean_loss() - base)
            attn.kind = "S"  # RoPE on, the config's window
            cost_s.append(mean_loss() - base)
            attn.kind = kind
    finally:
        for attn, kind in zip(attns, kinds):
            attn.kind = kind
        model.train(was_training)
    return cost_n, cost_s


def cheapest_as_n(cost_n, cost_s, layers, n):
    """The n of these layers where becoming N costs least against becoming S; ties go to the earlier."""
    return set(sorted(layers, key=lambda layer: (cost_n[layer] - cost_s[layer], layer))[:n])


def measured_pattern(cost_n, cost_s, n_nope):
    """The full layer_pattern (one letter per layer): N at the n_nope layers where becoming N
    costs least against becoming S, S everywhere else. Ties go to the earlier layer."""
    if not 0 < n_nope < len(cost_n):
        raise ValueError(f"n_nope={n_nope}: a SWAN conversion makes at least one layer N and one S of {len(cost_n)}")
    chosen = cheapest_as_n(cost_n, cost_s, range(len(cost_n)), n_nope)
    return "".join("N" if layer in chosen else "S" for layer in range(len(cost_n)))


def spread_pattern(cost_n, cost_s, pattern):
    """--nope_layers=measured-spread: the layers in groups of len(pattern) consecutive ones, each
    group choosing as measured_pattern does, as many N as the pattern puts in it. The N layers stay
    spread through the stack: on SmolLM2 the cheapest layers were all in its upper half, and with
    no N layer below them its loss rose with length where the pattern's placement stayed flat
    (README, the SmolLM2 section)."""
    n_layer, chosen = len(cost_n), set()
    for start in range(0, n_layer, len(pattern)):
        group = range(start, min(start + len(pattern), n_layer))
        chosen |= cheapest_as_n(cost_n, cost_s, group, sum(pattern[layer % len(pattern)] == "N" for layer in group))
    return "".join("N" if layer in chosen else "S" for layer in range(n_layer))


def choose_nope_layers(model, pattern, batches, autocast, world=1, spread=False):
    """(layer_pattern, cost_n, cost_s): the source model measured on this process's batches, the
    costs averaged over every process (each holding its share of the same global batches, so the
    choice does not depend on their number); as many N layers as `pattern` has over n_layer,
    anywhere (measured_pattern) or as many in each group of len(pattern) layers (spread_pattern)."""
    n_layer = model.config.n_layer
    n_nope = sum(pattern[layer % len(pattern)] == "N" for layer in range(n_layer))
    if not 0 < n_nope < n_layer:
        raise SystemExit(f"error: --nope_layers=measured: layer_pattern={pattern} over {n_layer} layer(s) leaves no "
                         f"choice of N and S layers; use --nope_layers=pattern")
    cost_n, cost_s = layer_costs(model, batches, autocast)
    if world > 1:
        costs = torch.tensor([cost_n, cost_s], dtype=torch.float64, device=next(model.parameters()).device)
        torch.distributed.all_reduce(costs)
        cost_n, cost_s = (costs / world).tolist()
    chosen = spread_pattern(cost_n, cost_s, pattern) if spread else measured_pattern(cost_n, cost_s, n_nope)
    return chosen, cost_n, cost_s
