#!/usr/bin/env bash
# Does multivalue break past L because its answer needs the count? In " d1, d2, d3 and d4" the
# model must know which value is the last to write " and"; in " d1, d2, d3, d4" it need not. Two
# swan runs, identical (retrieval.sh's mix, 1000 steps) but for that form (--retrieval_list), each
# evaluated on multivalue and multikey (K = 4) at L ... 8 L, scaling off and a = 32. The evaluation's
# examples are in the "and" form; a "commas" answer counts through the any-order rule (greedy
# decoding, the first V numbers as a set), which ignores separators.
#
#   bash results/retrieval_list.sh     # two GPUs: about 2.5 minutes (one: the runs share it)
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-retrieval-list}
PREFIX=${PREFIX:-results/retrieval_list}
source "$(dirname "$0")/gpus.sh"  # SLOTS, the GPU ids from GPUS; background jobs stopped on exit
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue"
mkdir -p "$RUNS"
pids=() n=0
for form in and commas; do
    CUDA_VISIBLE_DEVICES=${SLOTS[$((n % ${#SLOTS[@]}))]} $PYTHON train.py config/gutenberg.py --arch=swan $MIX \
        --retrieval_list=$form --max_iters=1000 --eval_interval=500 --sample_tokens=0 --out_dir="$RUNS/$form" ${TRAIN_ARGS:-} \
        > "$RUNS/$form.log" 2>&1 &
    pids+=($!) n=$((n + 1))
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "a training failed; see $RUNS/*.log" >&2; tail -n 3 "$RUNS"/*.log >&2; exit 1; }
done
pids=() n=0
for form in and commas; do
    CUDA_VISIBLE_DEVICES=${SLOTS[$((n % ${#SLOTS[@]}))]} $PYTHON extrapolate.py "$RUNS/$form" --task=retrieval \
        --tasks=multivalue,multikey --num_keys=4 --scale_base=off,32 --lengths=512,1024,2048,4096 \
        --out="${PREFIX}_$form" ${EVAL_ARGS:-} > "${PREFIX}_$form.log" 2>&1 &
    pids+=($!) n=$((n + 1))
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "an evaluation failed; see ${PREFIX}_*.log" >&2; exit 1; }
done
for form in and commas; do echo "$form: $(tail -n 1 "$RUNS/$form/log.jsonl")"; grep "^|" "${PREFIX}_$form.log"; done
