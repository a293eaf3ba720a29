#!/usr/bin/env bash
# Retrieval far beyond the training length, the second headline result: the five architectures
# and two other NoPE:SWA ratios of swan (1:1 "NS", 1:7 "NSSSSSSS"), each trained with the
# headline config (config/gutenberg.py: 29M parameters, L = 512, window 128, same tokens, data
# order and schedule) and the same retrieval mix (MIX: from halfway on, half the sequences are
# needle tasks, multikey (K <= 16 keys) and multivalue (V <= 4 values) drawn twice as often as
# passkey, which is learned fastest, and each answer token weighs 10 times in the loss: the mix
# that taught multikey in results/retrieval_mix.sh; multivalue's training answers list the values
# in a random order, which results/multivalue.sh found to remove its cliff at L; multikey with up
# to 16 keys, which results/multivalue.sh (variant k16) found to hold K = 16 at no cost in loss),
# plus swan without the mix, to measure what the mix costs in language-model loss.
# Then extrapolate.py --task=retrieval at L ... 128 L, every task and depth, scaling off and at
# each run's tuned base.
#
#   python data/prepare.py --dataset=path/to/gutenberg   # once: a folder with train/ and val/ books
#   bash results/retrieval.sh             # one H100: about 19 minutes (7.5 training, 11.5 evaluation) before the
#                                         # evaluation decoded every wrong multivalue answer; two H200s: 13 minutes
#   FROM_L=1 GPUS=0,1,2,3 bash results/retrieval.sh   # four H100s, with the evaluation from L: 13.7 minutes
#
#   MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 \
#       --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue --retrieval_order=random" \
#       PREFIX=results/retrieval_k4 bash results/retrieval.sh   # at most 4 keys: the headline before this one
#   MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 \
#       --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue" PREFIX=results/retrieval_needles \
#       bash results/retrieval.sh   # multivalue answers in the needles' order: the previous headline
#   MIX="--retrieval=0.5 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue" \
#       PREFIX=results/retrieval_uniform bash results/retrieval.sh   # the first mix: all along, answers weighed 1
#
# The trainings run side by side, spread over the GPUs there are (their compiles overlap); with
# two or more GPUs the evaluation is split in two halves, one per GPU, both holding swan, and
# joined by results/merge_evals.py, which checks that swan scored the same in both. RUNS is where
# the run folders go, PREFIX what the results are called; TRAIN_ARGS go to every training,
# EVAL_ARGS to the evaluation; GPUS the GPU ids to use (default: CUDA_VISIBLE_DEVICES, else all); ONLY=train
# or ONLY=eval runs one half (the second finds the runs of the first). FROM_L=1 evaluates the runs
# with N layers once more with the scaling begun at L (extrapolate.py --scale_from_L) into
# PREFIX_from_L.csv/png (with three GPUs or more, on the third, beside the other evaluations).
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-retrieval}
PREFIX=${PREFIX:-results/retrieval}
MIX=${MIX:---retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=16 --retrieval_values=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue --retrieval_order=random}
ONLY=${ONLY:-}
source "$(dirname "$0")/gpus.sh"  # SLOTS (the GPU ids from GPUS), on_next_gpu, wait_all
mkdir -p "$RUNS"
declare -A SETTINGS=(
    [gpt]="--arch=gpt $MIX" [nope]="--arch=nope $MIX" [swa]="--arch=swa $MIX" [swan]="--arch=swan $MIX"
    [swat]="--arch=swat $MIX" [swan-ns]="--arch=swan --layer_pattern=NS $MIX"
    [swan-nsssssss]="--arch=swan --layer_pattern=NSSSSSSS $MIX" [swan-nomix]="--arch=swan"
)
NAMES="gpt nope swa swan swat swan-ns swan-nsssssss swan-nomix"

if [ "$ONLY" != eval ]; then
    for name in $NAMES; do
        on_next_gpu $PYTHON train.py config/gutenberg.py ${SETTINGS[$name]} --out_dir="$RUNS/$name" ${TRAIN_ARGS:-} \
            > "$RUNS/$name.log" 2>&1
    done
    wait_all $(for name in $NAMES; do echo "$RUNS/$name.log"; done)  # every training must succeed
    for name in $NAMES; do echo "$name: $(tail -n 1 "$RUNS/$name/log.jsonl")"; done  # the final val loss at L
fi
if [ "$ONLY" != train ]; then
    evaluate=($PYTHON extrapolate.py --task=retrieval --tune_scale --max_len=65536 ${EVAL_ARGS:-})
    from_L() {  # the runs with N layers, with the scaling begun at L
        "${evaluate[@]}" --scale_from_L "$RUNS"/{nope,swan,swan-ns,swan-nsssssss} --out="${PREFIX}_from_L"
    }
    from_L_pid=
    if [ -n "${FROM_L:-}" ] && [ ${#SLOTS[@]} -ge 3 ]; then  # a third GPU: beside the other evaluations
        CUDA_VISIBLE_DEVICES=${SLOTS[2]} from_L > "${PREFIX}_from_L.log" 2>&1 &
        from_L_pid=$!
    fi
    wait_from_L() {
        if [ -n "$from_L_pid" ]; then
            wait "$from_L_pid" || { echo "the evaluation from L failed; its log ends:" >&2
                                    tail -n 5 "${PREFIX}_from_L.log" >&2; exit 1; }
            cat "${PREFIX}_from_L.log"
        elif [ -n "${FROM_L:-}" ]; then
            CUDA_VISIBLE_DEVICES=${SLOTS[0]} from_L
        fi
    }
    if [ ${#SLOTS[@]} -ge 2 ]; then
        CUDA_VISIBLE_DEVICES=${SLOTS[1]} "${evaluate[@]}" "$RUNS"/{swan,swat,swan-ns,swan-nsssssss} --out="$RUNS/eval_part2" \
            > "$RUNS/eval_part2.log" 2>&1 &
        CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${evaluate[@]}" "$RUNS"/{gpt,nope,swa,swan} --out="$RUNS/eval_part1"
        wait $! || { echo "the second half of the evaluation failed; its log ($RUNS/eval_part2.log) ends:" >&2
                     tail -n 5 "$RUNS/eval_part2.log" >&2; exit 1; }
        cat "$RUNS/eval_part2.log"
        $PYTHON results/merge_evals.py "$RUNS/eval_part1.csv" "$RUNS/eval_part2.csv" --out="$PREFIX"
    else
        "${evaluate[@]}" "$RUNS"/{gpt,nope,swa,swan,swat,swan-ns,swan-nsssssss} --out="$PREFIX"
    fi
    wait_from_L
fi
