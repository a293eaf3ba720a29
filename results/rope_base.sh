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
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)
for arch in gpt swa swan; do
    for base in 1e4 1e6; do
        on_next_gpu $PYTHON train.py config/gutenberg.py --arch=$arch --rope_base=$base --out_dir="$RUNS/$arch-$base" \
            ${TRAIN_ARGS:-} > "$RUNS/$arch-$base.log" 2>&1
    done
done
wait_all "$RUNS"/{gpt,swa,swan}-{1e4,1e6}.log  # every training must succeed; its log says why if one did not
$PYTHON extrapolate.py "$RUNS"/{gpt,swa,swan}-{1e4,1e6} --out="$PREFIX" ${EVAL_ARGS:-}
