#!/usr/bin/env bash
# The headline experiment: five architectures trained on the Gutenberg books with the same tokens,
# data order and schedule (config/gutenberg.py: 29M parameters, L = 512, window 128), the gpt run
# converted to swan with 10% of its tokens, then every run evaluated at L, 2L, ... 32L.
#
#   python data/prepare.py --dataset=path/to/gutenberg   # once: a folder with train/ and val/ books
#   bash results/headline.sh                                     # one H100: 6.3 minutes
#
# The five trainings share the GPU (run side by side, so their compiles overlap; spread over the
# GPUs there are, GPUS); each one's tokens/s in its log is therefore a fraction of what it gets alone. Extra settings for every
# training go in TRAIN_ARGS (e.g. TRAIN_ARGS="--max_iters=20 --compile=false" for a smoke run),
# for the evaluation in EVAL_ARGS; RUNS is where the run folders go, PREFIX what the results are
# called (PREFIX.csv, PREFIX.png).
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-gutenberg}
PREFIX=${PREFIX:-results/extrapolation}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
mkdir -p "$RUNS"
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)

for arch in gpt nope swa swan swat; do
    on_next_gpu $PYTHON train.py config/gutenberg.py --arch=$arch --out_dir="$RUNS/$arch" $TRAIN_ARGS > "$RUNS/$arch.log" 2>&1
done
wait_all "$RUNS"/{gpt,nope,swa,swan,swat}.log  # every training must succeed; its log says why if one did not
grep -h "^val loss" "$RUNS"/*.log || true

# SWAN conversion: gpt's weights, RoPE dropped in layers 0 and 4 (the pattern's places, as when
# this result was made; conversion.sh measures better ones), the others windowed, then 200 steps
# (10% of gpt's 2000) at a lower peak rate, since the weights are trained already
$PYTHON train.py config/gutenberg.py --init_from="$RUNS/gpt" --arch=swan --out_dir="$RUNS/gpt2swan" \
    --max_iters=200 --warmup_iters=20 --learning_rate=1e-3 --nope_layers=pattern --eval_interval=100 --compile=false $TRAIN_ARGS \
    > "$RUNS/gpt2swan.log" 2>&1 || { tail -3 "$RUNS/gpt2swan.log" >&2; exit 1; }

$PYTHON extrapolate.py "$RUNS"/{gpt,nope,swa,swan,swat,gpt2swan} --tune_scale \
    --out="$PREFIX" $EVAL_ARGS
