#!/usr/bin/env bash
# The prefill A/B of this folder (one H100, a throwaway script kept as it ran, paths made relative):
# a copy of the tree with model.py and attention_triton.py as they were before the change
# (commit 021d8e8) in OLD, the tree itself as new; prefill_time.py in each, alternately, twice;
# then the GPU tests of the changed files (cut off by their 240 s limit, no failure before it).
OLD=${OLD:-../swan-old}   # e.g. git worktree add ../swan-old 021d8e8
OUT=${OUT:-.}
for i in 1 2; do
    (cd "$OLD" && python3 "$OLDPWD/results/logs/bench/prefill/prefill_time.py") 2>&1 | grep -v -i warn | tail -1 | sed "s/^/old$i /" >> "$OUT/ab.txt"
    python3 results/logs/bench/prefill/prefill_time.py 2>&1 | grep -v -i warn | tail -1 | sed "s/^/new$i /" >> "$OUT/ab.txt"
done
timeout 240 python3 -m pytest -q tests/test_model.py tests/test_attention_triton.py 2>&1 | tail -3
