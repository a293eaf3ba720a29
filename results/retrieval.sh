#!/usr/bin/env bash
# Retrieval far beyond the training length, the second headline result: the five architectures
# and two other NoPE:SWA ratios of swan (1:1 "NS", 1:7 "NSSSSSSS"), each trained with the
# headline config (config/gutenberg.py: 29M parameters, L = 512, window 128, same tokens, data
# order and schedule) and the same retrieval mix (MIX: half the sequences are needle tasks, at
# most 4 keys, multikey and multivalue drawn twice as often as passkey, which is learned fastest),
# plus swan without the mix, to measure what the mix costs in language-model loss.
# Then extrapolate.py --task=retrieval at L ... 128 L, every task and depth, scaling off and at
# each run's tuned base.
#
#   python data/prepare.py --dataset=path/to/gutenberg   # once: a folder with train/ and val/ books
#   bash results/retrieval.sh                            # one H100: about 11 minutes
#
# The trainings share the GPU side by side (their compiles overlap). RUNS is where the run folders
# go, PREFIX what the results are called; TRAIN_ARGS go to every training, EVAL_ARGS to the
# evaluation; ONLY=train or ONLY=eval runs one half (the second finds the runs of the first).
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-retrieval}
PREFIX=${PREFIX:-results/retrieval}
MIX=${MIX:---retrieval=0.5 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue}
ONLY=${ONLY:-}
mkdir -p "$RUNS"
declare -A SETTINGS=(
    [gpt]="--arch=gpt $MIX" [nope]="--arch=nope $MIX" [swa]="--arch=swa $MIX" [swan]="--arch=swan $MIX"
    [swat]="--arch=swat $MIX" [swan-ns]="--arch=swan --layer_pattern=NS $MIX"
    [swan-nsssssss]="--arch=swan --layer_pattern=NSSSSSSS $MIX" [swan-nomix]="--arch=swan"
)
NAMES="gpt nope swa swan swat swan-ns swan-nsssssss swan-nomix"

if [ "$ONLY" != eval ]; then
    pids=()
    for name in $NAMES; do
        $PYTHON train.py config/gutenberg.py ${SETTINGS[$name]} --out_dir="$RUNS/$name" ${TRAIN_ARGS:-} \
            > "$RUNS/$name.log" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do  # every training must succeed; its log says why if one did not
        wait "$pid" || { echo "a training failed; see $RUNS/*.log" >&2; tail -n 3 "$RUNS"/*.log >&2; exit 1; }
    done
    for name in $NAMES; do echo "$name: $(tail -n 1 "$RUNS/$name/log.jsonl")"; done  # the final val loss at L
fi
if [ "$ONLY" != train ]; then
    $PYTHON extrapolate.py "$RUNS"/{gpt,nope,swa,swan,swat,swan-ns,swan-nsssssss} --task=retrieval --tune_scale \
        --max_len=65536 --out="$PREFIX" ${EVAL_ARGS:-}
fi
