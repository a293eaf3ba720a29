#!/usr/bin/env bash
# Which retrieval mix: swan trained with the headline config and six mixes side by side, then
# extrapolate.py --task=retrieval at L ... 32 L. What each costs in language-model loss is the
# last val_loss of its log against swan without a mix (results/retrieval.sh trains that one).
#
#   bash results/retrieval_mix.sh       # one H100: about 7 minutes for the first four
#
# The -w10 mixes weigh each answer token 10 times in the loss (--retrieval_answer_weight=10): the
# answers are a few percent of a mixed batch's tokens, and the only ones that need the needle.
# MIXES_TO_RUN picks which to run (default: all six); the trainings are spread over the GPUs
# there are (GPUS: the ids to use; default CUDA_VISIBLE_DEVICES, else all).
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-retrieval-mix}
PREFIX=${PREFIX:-results/retrieval_mix}
mkdir -p "$RUNS"
declare -A MIXES=(
    [uniform]="--retrieval=0.5"
    [uniform-k8]="--retrieval=0.5 --retrieval_keys=8"
    [quarter]="--retrieval=0.25"
    [late]="--retrieval=0.5 --retrieval_start=0.5"
    [quarter-w10]="--retrieval=0.25 --retrieval_answer_weight=10"
    [late-w10]="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10"
)
NAMES=${MIXES_TO_RUN:-uniform uniform-k8 quarter late quarter-w10 late-w10}
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)
for name in $NAMES; do
    [ -n "${MIXES[$name]+set}" ] || { echo "error: MIXES_TO_RUN: unknown mix $name; the mixes are ${!MIXES[*]}" >&2; exit 1; }
done
for name in $NAMES; do
    on_next_gpu $PYTHON train.py config/gutenberg.py --arch=swan ${MIXES[$name]} --out_dir="$RUNS/$name" ${TRAIN_ARGS:-} \
        > "$RUNS/$name.log" 2>&1
done
wait_all $(for name in $NAMES; do echo "$RUNS/$name.log"; done)
runs=()
for name in $NAMES; do
    echo "$name: $(tail -n 1 "$RUNS/$name/log.jsonl")"
    runs+=("$RUNS/$name")
done
$PYTHON extrapolate.py "${runs[@]}" --task=retrieval --tune_scale --out="$PREFIX" ${EVAL_ARGS:-}
