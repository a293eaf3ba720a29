"""The float64 definition every attention path is checked against, and the error measure."""

import torch


def reference(q, k, v, window=None, kind="softmax", alibi_slopes=None, scale=None):
    """Dense masked attention in float64, the queries being the last Tq positions of the keys:
    the definition of attention.py's docstring, with no cleverness."""
    q, k, v = q.double(), k.double(), v.double()
    H, Tq, D = q.shape[1], q.shape[2], q.shape[3]
    Tk = k.shape[2]
    scale = D ** -0.5 if scale is None else scale
    dist = torch.arange(Tk - Tq, Tk, device=q.device)[:, None] - torch.arange(Tk, device=q.device)[None, :]
    visible = (dist >= 0) & (dist < (window or Tk))
    logits = scale * q @ k.transpose(-1, -2)
    if alibi_slopes is not None:
        logits = logits + alibi_slopes.double().view(H, 1, 1) * dist
    if kind == "softmax":
        weights = logits.masked_fill(~visible, float("-inf")).softmax(-1)
    else:
        weights = torch.sigmoid(logits) * visible
    return weights @ v


def rel_err(a, b):
    """|a - b| / |b| in float64; absolute where the reference b is exactly zero (the q gradient
    of a one-key softmax window: its weight is always 1, whatever q is)."""
    a, b = a.double(), b.double()
    scale = b.norm().item() or 1.0
    return ((a - b).norm() / scale).item()
