#!/usr/bin/env bash
# Why the converted swan of the headline run trails swan trained from scratch: the same gpt
# checkpoint continued as swan at three peak learning rates with 10% of gpt's 2000 steps, and at
# the middle rate with 20% and 40%, all evaluated at L and 8L next to scratch gpt and swan.
#
#   bash results/conversion.sh        # one H100: 5.5 minutes (reuses out-gutenberg/{gpt,swan} if there)
#
# Settings as in headline.sh (PYTHON, RUNS, TRAIN_ARGS, EVAL_ARGS); PREFIX defaults to
# results/conversion.
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-gutenberg}
PREFIX=${PREFIX:-results/conversion}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
mkdir -p "$RUNS"

train() {  # name, then settings; all in the background
    local name=$1; shift
    $PYTHON train.py config/gutenberg.py --out_dir="$RUNS/$name" "$@" $TRAIN_ARGS > "$RUNS/$name.log" 2>&1 &
    pids+=($!)
}
wait_all() {
    for pid in "${pids[@]}"; do
        wait "$pid" || { echo "a training failed; see $RUNS/*.log" >&2; exit 1; }
    done
    pids=()
}

pids=()
for arch in gpt swan; do  # the scratch runs, unless headline.sh made them already
    [ -f "$RUNS/$arch/ckpt.pt" ] || train $arch --arch=$arch
done
wait_all

runs=()
for spec in 3e-4:200 1e-3:200 3e-3:200 1e-3:400 1e-3:800; do
    lr=${spec%:*} steps=${spec#*:}
    train "gpt2swan-lr$lr-$steps" --init_from="$RUNS/gpt" --arch=swan --max_iters=$steps --warmup_iters=20 \
        --learning_rate=$lr --eval_interval=100 --compile=false
    runs+=("$RUNS/gpt2swan-lr$lr-$steps")
done
wait_all
grep -h "^val loss" "$RUNS"/gpt2swan-lr*.log || true

$PYTHON extrapolate.py "$RUNS/gpt" "$RUNS/swan" "${runs[@]}" --lengths=512,4096 --out="$PREFIX" $EVAL_ARGS
