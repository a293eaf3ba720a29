#!/usr/bin/env bash
# Decoding with the merge in the last split (no combine kernel) and the norms split between the
# products around them: GPU tests, then bench.py's decode for the code before (carry/s15/old),
# with the merge only (carry/s15/a) and with both (the tree), taking turns twice, and a profile.
# carry/s15/old: the top-level .py files of commit 9ed3370; carry/s15/a: this call's tree less the
# norm split (the merge in the last split on every cache, a first form since changed). Kept as the
# record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
OUT=$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT"); mkdir -p $OUT
LOGS=$OUT/call1; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
t0=$(date +%s)
timeout 170 python3 -m pytest -q -x tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 3 $LOGS/gpu_tests.log
echo "elapsed $(( $(date +%s) - t0 )) s"
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2; do
  (cd carry/s15/old && python3 bench.py $A --out=$LOGS/bench_old_$r 2>&1 | tail -n 6 > $LOGS/bench_old_$r.log)
  (cd carry/s15/a && python3 bench.py $A --out=$LOGS/bench_merge_$r 2>&1 | tail -n 6 > $LOGS/bench_merge_$r.log)
  python3 bench.py $A --out=$LOGS/bench_new_$r 2>&1 | tail -n 6 > $LOGS/bench_new_$r.log
  grep "^| [13]" $LOGS/bench_old_$r.log $LOGS/bench_merge_$r.log $LOGS/bench_new_$r.log
  echo "elapsed $(( $(date +%s) - t0 )) s"
done
PYTHONPATH=. timeout 100 python3 results/logs/bench/fused_decode/profile_script.py > $LOGS/profile_new.log 2>&1
grep -v "Warn\|warn" $LOGS/profile_new.log | grep -A8 "=="
tar -czf $OUT/call1.tgz -C $OUT call1
echo "elapsed $(( $(date +%s) - t0 )) s"
