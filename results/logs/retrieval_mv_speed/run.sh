#!/usr/bin/env bash
# Multivalue's decoding, one answer at a time and eagerly (retrieval.py before 7b1212b: its .py files in
# carry/s14/mv_old, from `git archive d07751e`) against the failed answers of a batch decoded together in a
# CUDA graph (now), on one swan trained as results/retrieval.sh trains it. Wall time of the same
# evaluation by each, and passkey + multikey beside them. Run from the repository root on one GPU.
set -euo pipefail
OUT=${OUT:-results/logs/retrieval_mv_speed}
mkdir -p $OUT
ROOT=$PWD
# (as it ran, the old code's --out below was $ROOT/$OUT/..., wrong for the GPU machine's absolute
# OUT: those two CSVs went elsewhere and did not come back; their tables are in the logs)
OUT=$(cd $OUT && pwd)
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=16 --retrieval_values=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue --retrieval_order=random"
nvidia-smi -L | sed "s/ (UUID.*//" > $OUT/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/versions.txt
t0=$(date +%s)
python3 train.py config/gutenberg.py --arch=swan $MIX --out_dir=out-mv/swan > $OUT/train.log 2>&1
tail -n 1 out-mv/swan/log.jsonl
echo "trained in $(( $(date +%s) - t0 )) s"
E="--task=retrieval --lengths=512,2048,8192,16384 --data_dir=$ROOT/data/gutenberg"
timed() {  # name, then the command
    local name=$1; shift
    local a=$(date +%s.%N)
    "$@" > $OUT/$name.log 2>&1
    echo "$name: $(python3 -c "print(f'{$(date +%s.%N) - $a:.1f}')") s" | tee -a $OUT/times.txt
}
timed warmup python3 extrapolate.py $E out-mv/swan --tasks=passkey --lengths=512 --out=$OUT/warmup
for r in 1 2; do
  timed multivalue_one_at_a_time_$r bash -c "cd carry/s14/mv_old && python3 extrapolate.py $E $ROOT/out-mv/swan --tasks=multivalue --out=$OUT/mv_old_$r"
  timed multivalue_batched_$r python3 extrapolate.py $E out-mv/swan --tasks=multivalue --out=$OUT/mv_new_$r
done
timed passkey_multikey python3 extrapolate.py $E out-mv/swan --tasks=passkey,multikey --num_keys=4 --out=$OUT/pk_mk
for f in $OUT/mv_old_1.csv $OUT/mv_new_1.csv; do echo "$f"; cut -d, -f1-8 $f | head -30; done
