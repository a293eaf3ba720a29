#!/usr/bin/env bash
# Why does multivalue break past L when passkey and multikey do not? Swan runs with the same settings
# (retrieval.sh's mix and schedule) but for how the multivalue answers they train on are written (or how many),
# each evaluated on multivalue, multikey (K = 4) and passkey at L ... 32 L, scaling off, at a = 32
# and at its tuned base. (A random order is drawn last in each example, from the batch's stream of
# task draws, so the examples after it differ between the variants: the same kinds of example in
# the same proportions, not the same examples.)
#
#   and      " d1, d2, d3 and d4", in the needles' order: retrieval.sh's runs
#   commas   " d1, d2, d3, d4" (--retrieval_list=commas): writing " and" needs the count, this does not
#   random   the "and" form, the values in a random order per example (--retrieval_order=random):
#            the needles' order is a matter of position, which the N layers do not carry past L
#   more     random, with 2.25 times the multivalue examples in the same 2000 steps: the mix from a
#            quarter of the steps (not half), 60% of the sequences (not 50%), and half of them
#            multivalue (not 2 in 5). Random's failures are repeated values (bookkeeping), and
#            longer runs learned it better but overfit the books' text
#   more8    more, with up to 8 needles per example (multikey K and multivalue V up to 8, not 4):
#            more distractors to learn from, toward multikey at K = 16
#   k8       random, with multikey K up to 8 and multivalue V up to 4 (--retrieval_values=4)
#   more-k8  more, the same
#   k16      random, with multikey K up to 16 and multivalue V up to 4: retrieval.sh's mix
#   more-k16 more, the same
#   mv-k16   k16 with two thirds of the tasks multivalue (passkey, multikey, multivalue drawn 1:2:6,
#            not 1:2:2): 1.67 times the multivalue examples with the same share of task sequences
#            as k16, where more also had more task sequences (and cost 0.07 nats of val loss)
#   k16-snss k16 with the N layers at 1 and 5 (--layer_pattern=SNSS), not 0 and 4: an N layer at
#            the bottom sees only token embeddings, so the paper's pattern leaves one N layer to
#            match a question to its needles; here both N layers read windowed layers' output
#   k16-ssns k16 with the N layers at 2 and 6 (--layer_pattern=SSNS)
#   k16-16x512  k16 in a model twice as deep (16 layers of 512, N at 0, 4, 8, 12: 54M parameters)
#   k16-12x768  k16 in a model 12 layers x 768 wide, 12 heads (N at 0, 4, 8; 91M parameters, 3.1 times the
#            headline's): is multivalue's ceiling the model's size?
#
# The evaluation's examples are in the "and" form, in the needles' order; an answer in another
# form or order counts through the any-order rule (greedy decoding, the first V numbers as a set).
#
#   bash results/multivalue.sh                  # VARIANTS="and random", SEEDS="1337 2": two H200s, 7 minutes
#   VARIANTS="and commas" SEEDS=1337 ITERS=1000 LENGTHS=512,1024,2048,4096 BASES=off,32 TUNE= \
#       bash results/multivalue.sh              # the first A/B (results/logs/retrieval_list_ab/)
#
# Each run's evaluation is PREFIX_VARIANT-seedS.csv/png/log; results/multivalue.py joins them into
# PREFIX.csv (the depths pooled, with each run's steps and val loss) and PREFIX.png (multivalue
# against length, a line per run, a panel per scale setting).
#
# With FROM_L=1 each run is evaluated a second time with the scaling beginning at L
# (extrapolate.py --scale_from_L: 1 up to L, the paper's curve less its rise beyond), into
# PREFIX_VARIANT-seedS_from_L.csv, and the table gets a "tuned from L" setting:
#
#   VARIANTS="random more" SEEDS="1337 2" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 \
#       PREFIX=results/multivalue_more bash results/multivalue.sh   # one H100, 10 minutes
#
# Settings: PYTHON, RUNS, PREFIX, VARIANTS, SEEDS, ITERS,
# LENGTHS, BASES, TUNE (--tune_scale, or empty), FROM_L, GPUS, TRAIN_ARGS, EVAL_ARGS.
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-multivalue}
PREFIX=${PREFIX:-results/multivalue}
VARIANTS=${VARIANTS:-and random}
SEEDS=${SEEDS:-1337 2}
ITERS=${ITERS:-2000}
LENGTHS=${LENGTHS:-512,1024,2048,4096,8192,16384}
BASES=${BASES:-off,32}
TUNE=${TUNE---tune_scale}
source "$(dirname "$0")/gpus.sh"  # on_next_gpu, wait_all: side by side over the GPUs (GPUS)
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue"
MORE="--retrieval_order=random --retrieval=0.6 --retrieval_start=0.25 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue,multivalue"
K16="--retrieval_order=random --retrieval_keys=16 --retrieval_values=4"  # retrieval.sh's mix beyond MIX
declare -A FORM=([and]="" [commas]="--retrieval_list=commas" [random]="--retrieval_order=random" [more]="$MORE"
                 [more8]="$MORE --retrieval_keys=8" [k8]="--retrieval_order=random --retrieval_keys=8 --retrieval_values=4"
                 [more-k8]="$MORE --retrieval_keys=8 --retrieval_values=4"
                 [k16]="$K16"
                 [more-k16]="$MORE --retrieval_keys=16 --retrieval_values=4"
                 [k16-snss]="$K16 --layer_pattern=SNSS"
                 [k16-ssns]="$K16 --layer_pattern=SSNS"
                 [k16-16x512]="$K16 --n_layer=16"
                 [k16-12x768]="$K16 --n_layer=12 --n_head=12 --n_embd=768"
                 [mv-k16]="$K16 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue,multivalue,multivalue,multivalue,multivalue")
names=()
for seed in $SEEDS; do for variant in $VARIANTS; do
    [ -n "${FORM[$variant]+set}" ] || { echo "error: VARIANTS: unknown variant $variant; the variants are ${!FORM[*]}" >&2; exit 1; }
    names+=("$variant-seed$seed")
done; done
mkdir -p "$RUNS"
for name in "${names[@]}"; do
    variant=${name%-seed*} seed=${name##*-seed}
    on_next_gpu $PYTHON train.py config/gutenberg.py --arch=swan $MIX ${FORM[$variant]} --seed="$seed" --max_iters="$ITERS" \
        --eval_interval=$((ITERS / 2)) --sample_tokens=0 --out_dir="$RUNS/$name" ${TRAIN_ARGS:-} > "$RUNS/$name.log" 2>&1
done
wait_all $(for name in "${names[@]}"; do echo "$RUNS/$name.log"; done)
evals=("")  # suffixes of each run's evaluations: the paper's scaling, and with FROM_L=1 scaling from L too
[ -n "${FROM_L:-}" ] && evals+=("_from_L")
for name in "${names[@]}"; do for e in "${evals[@]}"; do
    on_next_gpu $PYTHON extrapolate.py "$RUNS/$name" --task=retrieval --tasks=multivalue,multikey,passkey --num_keys=4 \
        --scale_base="$BASES" $TUNE --lengths="$LENGTHS" --out="${PREFIX}_$name$e" ${e:+--scale_from_L} ${EVAL_ARGS:-} \
        > "${PREFIX}_$name$e.log" 2>&1
done; done
wait_all $(for name in "${names[@]}"; do for e in "${evals[@]}"; do echo "${PREFIX}_$name$e.log"; done; done)
$PYTHON results/multivalue.py $(for name in "${names[@]}"; do for e in "${evals[@]}"; do echo "${PREFIX}_$name$e.csv"; done; done) \
    --runs="$RUNS" --out="$PREFIX"
