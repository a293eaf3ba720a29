#!/usr/bin/env bash
# The conversion study: the headline gpt (config/gutenberg.py, 2000 steps) becomes swan with 2%,
# 5% and 10% of its tokens (40, 100, 200 steps of the same batches), by eight recipes side by side,
# each evaluated at L, 8L and 32L on the val books next to swan and gpt trained from scratch:
#
#   restart      gpt's weights, RoPE dropped in layers 0 and 4 (the pattern's N), the others
#                windowed; a fresh AdamW; peak rate 1e-3 after a 10% warmup, cosine to 0.1x
#   +adam        restart, continuing gpt's AdamW moments (--source_optimizer)
#   +layers      restart, N at the layers the gpt measures as least hurt by losing RoPE
#                (--nope_layers=measured, conversion.py)
#   +both        both of the above
#   continue     the schedule where gpt ended: its moments, its final rate 1.5e-4, held
#   +both-2L     +both, trained at 2L (1024 tokens, half the sequences: the same tokens)
#   +layers-2L   +layers at 2L;  +layers-4L  +layers at 4L (2048 tokens, a quarter of the sequences)
#   +distill     +layers, plus a KL term to gpt's logits (--distill_from)
#   +distill-4L  +layers-4L with that term on the first L positions of each sequence (past L the
#                teacher, a RoPE model trained at L, is no teacher: conversion.distill_kl)
#   +distill-fade  +distill, the N layers keeping RoPE at a fraction of its angles that falls
#                linearly from 1 to 0 over the first half of the steps (--rope_fade=0.5)
#   +distill-lr2   +distill at twice the peak rate (2e-3)
#   +distill-kl    +distill on the teacher alone (--distill_weight=1: no cross-entropy)
#   +distill-adam  +distill continuing gpt's AdamW moments (--source_optimizer)
#   +distill-adam-kl  both of the last two
#   +distill-n-first  +distill, the first 20% of the steps training only the N layers' blocks
#                (--converted_first=0.2; the rest frozen: they lost nothing)
#   +distill-adam-n16, +distill-adam-n36  +distill-adam with N fixed at layers 1 and 6, or 3 and 6:
#                the measurement ranks layers 1 and 3 within 0.01 of each other, and its choice
#                between them changes with the batches it is measured on (the seed)
#   +distill-adam-4L   +distill-adam trained at 4L, the teacher on the first L positions only
#   +distill-adam-4Lw  the same, the teacher reading windows of L half a window apart, so that it
#                teaches every position (--distill_windows); +distill-adam-2Lw at 2L;
#                +distill-adam-kl-4Lw the teacher alone (--distill_weight=1)
#
#   bash results/conversion.sh        # one H100: about 10 minutes before the two +distill recipes (reuses RUNS/{gpt,swan} if there)
#
# With HOLDOUT=BOOKS (a folder with train/ and val/ books, those data/gutenberg was prepared from)
# every 15th of its train books is set aside as "other long books": every model here, scratch and
# converted, trains on the rest (RUNS/data, prepared with data/gutenberg's tokenizer) and is
# evaluated on the val books and on the set-aside ones (RUNS/other_data; PREFIX_other_loss.csv,
# PREFIX_other.csv/png), books neither the models nor the choice of recipe ever saw.
#
# Trainings run side by side, spread over the GPUs there are. Settings: PYTHON, RUNS, PREFIX
# (default results/conversion: PREFIX.csv the gaps, PREFIX.png the figure, PREFIX_loss.csv every
# loss, PREFIX_retrieval.csv/png the needle tasks), TRAIN_ARGS and EVAL_ARGS for every training
# and evaluation, RECIPES, STEPS and RETRIEVAL_RUNS to run a part, SEEDS to repeat the conversions
# with other data orders (SEEDS="11 12 13": how much of a difference is noise).
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-gutenberg}
PREFIX=${PREFIX:-results/conversion}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
RECIPES=${RECIPES:-restart +adam +layers +both continue +both-2L +layers-2L +layers-4L +distill +distill-4L}
STEPS=${STEPS:-40 100 200}
SEEDS=${SEEDS:-1337}  # the conversions' data order (train.py --seed); another than 1337 is named -seedN
RETRIEVAL_RUNS=${RETRIEVAL_RUNS-restart-100 +both-100}  # empty: none
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)
mkdir -p "$RUNS"

train() {  # name, then settings; in the background, on the next GPU
    local name=$1; shift
    on_next_gpu $PYTHON train.py config/gutenberg.py --out_dir="$RUNS/$name" --overwrite "$@" $TRAIN_ARGS > "$RUNS/$name.log" 2>&1
}
recipe() {  # the settings of a recipe
    case $1 in
        restart)   echo "--learning_rate=1e-3 --nope_layers=pattern" ;;
        +adam)     echo "--learning_rate=1e-3 --nope_layers=pattern --source_optimizer" ;;
        +layers)   echo "--learning_rate=1e-3 --nope_layers=measured" ;;
        +both)     echo "--learning_rate=1e-3 --source_optimizer --nope_layers=measured" ;;
        continue)  echo "--learning_rate=1.5e-4 --min_lr_ratio=1 --nope_layers=pattern --source_optimizer" ;;
        +both-2L)  echo "--learning_rate=1e-3 --source_optimizer --nope_layers=measured --block_size=1024 --batch_size=32" ;;
        +layers-2L) echo "--learning_rate=1e-3 --nope_layers=measured --block_size=1024 --batch_size=32" ;;
        +layers-4L) echo "--learning_rate=1e-3 --nope_layers=measured --block_size=2048 --batch_size=16" ;;
        +distill)  echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt" ;;
        +distill-fade) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --rope_fade=0.5" ;;
        +distill-lr2) echo "--learning_rate=2e-3 --nope_layers=measured --distill_from=$RUNS/gpt" ;;
        +distill-kl) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --distill_weight=1" ;;
        +distill-adam) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --source_optimizer" ;;
        +distill-adam-kl) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --source_optimizer --distill_weight=1" ;;
        +distill-n-first) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --converted_first=0.2" ;;
        +distill-adam-n16) echo "--learning_rate=1e-3 --nope_layers=pattern --layer_pattern=SNSSSSNS --distill_from=$RUNS/gpt --source_optimizer" ;;
        +distill-adam-n36) echo "--learning_rate=1e-3 --nope_layers=pattern --layer_pattern=SSSNSSNS --distill_from=$RUNS/gpt --source_optimizer" ;;
        +distill-4L) echo "--learning_rate=1e-3 --nope_layers=measured --distill_from=$RUNS/gpt --block_size=2048 --batch_size=16" ;;
        +distill-adam-4L) echo "$(recipe +distill-adam) --block_size=2048 --batch_size=16" ;;
        +distill-adam-4Lw) echo "$(recipe +distill-adam) --block_size=2048 --batch_size=16 --distill_windows" ;;
        +distill-adam-2Lw) echo "$(recipe +distill-adam) --block_size=1024 --batch_size=32 --distill_windows" ;;
        +distill-adam-kl-4Lw) echo "$(recipe +distill-adam-4Lw) --distill_weight=1" ;;
        *) echo "unknown recipe $1" >&2; exit 1 ;;
    esac
}

if [ -n "${HOLDOUT:-}" ]; then  # set aside every 15th train book; the rest, and the val books, to train and evaluate on
    if [ ! -f "$RUNS/other_data/meta.json" ]; then
        rm -rf "$RUNS/books" "$RUNS/other"
        mkdir -p "$RUNS/books/train" "$RUNS/books/val" "$RUNS/other/train" "$RUNS/other/val"
        i=0
        for book in "$HOLDOUT"/train/*.txt; do
            if [ $((i % 15)) = 7 ]; then ln -s "$(realpath "$book")" "$RUNS/other/val/"; else ln -s "$(realpath "$book")" "$RUNS/books/train/"; fi
            i=$((i + 1))
        done
        for book in "$HOLDOUT"/val/*.txt; do ln -s "$(realpath "$book")" "$RUNS/books/val/"; done
        cp -P "$(ls "$RUNS"/other/val/*.txt | head -n 1)" "$RUNS/other/train/"  # prepare.py needs a train split; nothing trains on it
        $PYTHON data/prepare.py --dataset="$RUNS/books" --out_dir="$RUNS/data" --tokenizer_from=data/gutenberg
        $PYTHON data/prepare.py --dataset="$RUNS/other" --out_dir="$RUNS/other_data" --tokenizer_from=data/gutenberg
    fi
    TRAIN_ARGS="--data_dir=$RUNS/data $TRAIN_ARGS"
fi

for arch in gpt swan; do  # the scratch runs, unless headline.sh made them already
    [ -f "$RUNS/$arch/ckpt.pt" ] || train $arch --arch=$arch
done
wait_all "$RUNS"/*.log

runs=()
for steps in $STEPS; do
    for seed in $SEEDS; do
        for name in $RECIPES; do
            warmup=$((steps / 10))
            [ "$name" = continue ] && warmup=0
            run="gpt2swan$name$([ "$seed" = 1337 ] || echo "-seed$seed")-$steps"  # 1337: train.py's default seed
            train "$run" --init_from="$RUNS/gpt" --arch=swan --max_iters="$steps" --warmup_iters=$warmup \
                --eval_interval="$steps" --compile=false --seed="$seed" $(recipe "$name")
            runs+=("$RUNS/$run")
        done
    done
    wait_all "$RUNS"/*.log
done
grep -h "nope_layers=measured" "$RUNS"/gpt2swan+layers-200.log 2>/dev/null || true

evaluate() {  # the val books (their own data's, or with HOLDOUT the set-aside ones too), side by side
    on_next_gpu $PYTHON extrapolate.py "$RUNS/gpt" "$RUNS/swan" "${runs[@]}" --lengths=512,4096,16384 --out="$1_loss" "${@:2}" \
        $EVAL_ARGS > "$1_loss.log" 2>&1
}
evaluate "$PREFIX"
[ -n "${HOLDOUT:-}" ] && evaluate "${PREFIX}_other" --data_dir="$RUNS/other_data"
wait_all "${PREFIX}"*_loss.log
$PYTHON results/conversion.py --losses="${PREFIX}_loss.csv" --out="$PREFIX"
[ -n "${HOLDOUT:-}" ] && $PYTHON results/conversion.py --losses="${PREFIX}_other_loss.csv" --out="${PREFIX}_other"

# the needle tasks at L, 4L, 8L and 32L for scratch swan and two conversions at 5%. None of these
# runs saw a task in training (the headline config has no retrieval mix): this measures what the
# conversion keeps, not what a mix would teach
[ -z "$RETRIEVAL_RUNS" ] && exit 0
$PYTHON extrapolate.py "$RUNS/swan" $(for r in $RETRIEVAL_RUNS; do echo "$RUNS/gpt2swan$r"; done) --task=retrieval \
    --lengths=512,2048,4096,16384 --trials=4 --out="${PREFIX}_retrieval" $EVAL_ARGS
