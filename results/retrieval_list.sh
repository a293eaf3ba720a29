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
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue"
mkdir -p "$RUNS"
for form in and commas; do
    on_next_gpu $PYTHON train.py config/gutenberg.py --arch=swan $MIX --retrieval_list=$form --max_iters=1000 \
        --eval_interval=500 --sample_tokens=0 --out_dir="$RUNS/$form" ${TRAIN_ARGS:-} > "$RUNS/$form.log" 2>&1
done
wait_all "$RUNS"/{and,commas}.log
for form in and commas; do
    on_next_gpu $PYTHON extrapolate.py "$RUNS/$form" --task=retrieval --tasks=multivalue,multikey --num_keys=4 \
        --scale_base=off,32 --lengths=512,1024,2048,4096 --out="${PREFIX}_$form" ${EVAL_ARGS:-} > "${PREFIX}_$form.log" 2>&1
done
wait_all "${PREFIX}"_{and,commas}.log
for form in and commas; do echo "$form: $(tail -n 1 "$RUNS/$form/log.jsonl")"; grep "^|" "${PREFIX}_$form.log"; done
