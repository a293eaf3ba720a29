#!/usr/bin/env bash
# The RoPE base, measured rather than assumed: gpt, swa and swan trained with the headline config
# (config/gutenberg.py) at rope_base 1e4 (this repository's default) and 1e6 (the SWAN paper's, its
# Table 6), then evaluated at L ... 32 L on the same windows, scaling off.
#
#   python data/prepare.py --dataset=path/to/gutenberg   # once: a folder with train/ and val/ books
#   bash results/rope_base.sh                            # one H100: about 8 minutes
#
# RUNS is where the run folders go, PREFIX what the results are called; TRAIN_ARGS go to every
# training, EVAL_ARGS to the evaluation.
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-rope}
PREFIX=${PREFIX:-results/rope_base}
mkdir -p "$RUNS"
pids=()
for arch in gpt swa swan; do
    for base in 1e4 1e6; do
        $PYTHON train.py config/gutenberg.py --arch=$arch --rope_base=$base --out_dir="$RUNS/$arch-$base" \
            ${TRAIN_ARGS:-} > "$RUNS/$arch-$base.log" 2>&1 &
        pids+=($!)
    done
done
for pid in "${pids[@]}"; do  # every training must succeed; its log says why if one did not
    wait "$pid" || { echo "a training failed; see $RUNS/*.log" >&2; tail -n 3 "$RUNS"/*.log >&2; exit 1; }
done
$PYTHON extrapolate.py "$RUNS"/{gpt,swa,swan}-{1e4,1e6} --out="$PREFIX" ${EVAL_ARGS:-}
