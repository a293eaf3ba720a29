"""
Dynamic attention scaling's base a (arXiv 2504.08719, section 2.2): in the NoPE layers the query at
position n is multiplied by log(a + n) / log(a) at evaluation (model.GPT.set_scale_base). The paper
leaves a to "empirical tuning" per model; this is the tuning rule both evaluations of
extrapolate.py use, and the way a base is written on the command line and in the CSVs.
"""

import math

TUNE_GRID = (32, 64, 128, 256, 512, 1024, 2048, 4096)  # the first candidates, beside "off"
TUNE_LIMITS = (1.5, 2.0 ** 20)  # the grid grows no further: log(a + n) / log(a) is ~1 beyond the top


def scale_item(v):  # a base a > 1, or `off`
    return None if v.lower() in ("off", "none") else float(v)


def setting_name(base, start=0):  # start: where the scaling begins (model.GPTConfig.scale_start)
    return "off" if base is None else f"a={base:g}" + (f" from {start}" if start else "")


def tune_base(loss_of, grid=TUNE_GRID, limits=TUNE_LIMITS):
    """The scaling base with the lowest loss_of(base), "off" (None) always among the candidates.
    The grid of bases grows by doubling past whichever edge holds the best base until the best
    is inside it (or a limit is reached), then the two geometric midpoints around the best are
    tried, so neighbouring candidates end about 1.4x apart. Returns (best, {base: loss},
    interior), interior being whether the best numeric base had a tried neighbour on each side."""
    losses = {None: loss_of(None)}
    for base in sorted(grid):
        losses[base] = loss_of(base)
    while True:
        bases = sorted(b for b in losses if b is not None)
        best = min(bases, key=losses.get)
        if best == bases[0] and best / 2 >= limits[0]:
            losses[best / 2] = loss_of(best / 2)
        elif best == bases[-1] and best * 2 <= limits[1]:
            losses[best * 2] = loss_of(best * 2)
        else:
            break
    interior = bases[0] < best < bases[-1]
    for base in (best / math.sqrt(2), best * math.sqrt(2)):
        if interior and base not in losses:
            losses[base] = loss_of(base)
    best = min(losses, key=lambda b: (losses[b], b is not None))  # a tie goes to "off"
    return best, losses, interior
