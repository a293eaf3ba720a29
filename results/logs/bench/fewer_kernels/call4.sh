#!/usr/bin/env bash
# The final form: the norm split between the products around it, the MLP's down projection in
# shares of K, per-shape tiles of the matmuls, the merge in the last split on rings. GPU tests,
# then bench.py's decode for the code before (carry/s15/old) and now, taking turns three times,
# and a per-kernel profile of now.
# carry/s15/old: the top-level .py files of commit 9ed3370. Kept as the record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
OUT=$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT"); mkdir -p $OUT
LOGS=$OUT/call4; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
t0=$(date +%s)
timeout 170 python3 -m pytest -q -x tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 3 $LOGS/gpu_tests.log
echo "elapsed $(( $(date +%s) - t0 )) s"
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2 3; do
  (cd carry/s15/old && python3 bench.py $A --out=$LOGS/bench_old_$r 2>&1 | tail -n 6 > $LOGS/bench_old_$r.log)
  python3 bench.py $A --out=$LOGS/bench_new_$r 2>&1 | tail -n 6 > $LOGS/bench_new_$r.log
  grep "^| [13]" $LOGS/bench_old_$r.log $LOGS/bench_new_$r.log | awk -F'|' '{print $1,$2,$5,$8}'
  echo "elapsed $(( $(date +%s) - t0 )) s"
done
PYTHONPATH=. timeout 100 python3 results/logs/bench/fused_decode/profile_script.py > $LOGS/profile_new.log 2>&1
grep -v "Warn\|warn" $LOGS/profile_new.log | grep -A8 "=="
tar -czf $OUT/call4.tgz -C $OUT call4
echo "elapsed $(( $(date +%s) - t0 )) s"
