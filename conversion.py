"""
What a conversion (train.py --init_from=RUN --arch=swan --nope_layers=measured) decides before it
trains: which layers of the source model become N (global, no positions) and which S (RoPE over a
window).

SWAN's pattern puts N at the first layer of each group ("NSSS": layers 0, 4, ...), which suits a
model trained from scratch as swan. A trained GPT has already divided the work among its layers:
some attend locally, which a window barely changes; some attend far, which past L only an N layer
can still do; and some lean on RoPE's distances more than others. So ask the source model itself:
for each layer alone, the loss when its RoPE is dropped (it becomes N) and when it is windowed (S),
every other layer as trained. The layers where N costs least relative to S become N, as many as
the pattern asks for.
"""

import torch


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


def measured_pattern(cost_n, cost_s, n_nope):
    """The full layer_pattern (one letter per layer): N at the n_nope layers where becoming N
    costs least against becoming S, S everywhere else. Ties go to the earlier layer."""
    if not 0 < n_nope < len(cost_n):
        raise ValueError(f"n_nope={n_nope}: a SWAN conversion makes at least one layer N and one S of {len(cost_n)}")
    order = sorted(range(len(cost_n)), key=lambda layer: (cost_n[layer] - cost_s[layer], layer))
    chosen = set(order[:n_nope])
    return "".join("N" if layer in chosen else "S" for layer in range(len(cost_n)))
