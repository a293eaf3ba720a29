#!/usr/bin/env bash
# The final form: matmuls with their activation and residual folded (no norms), window layers'
# attention in the step kernel (tiles of 32, two warps), global layers as before. GPU tests, then
# bench.py's decode before (carry/s14/old) and after, taking turns twice, and a profile.
OUT=${OUT:-results/logs/bench/fused_decode}
LOGS=$OUT/call5; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
t0=$(date +%s)
timeout 200 python3 -m pytest -q tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 1 $LOGS/gpu_tests.log
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2; do
  (cd carry/s14/old && python3 bench.py $A --out=$LOGS/bench_before_$r 2>&1 | tail -n 6 > $LOGS/bench_before_$r.log)
  python3 bench.py $A --out=$LOGS/bench_after_$r 2>&1 | tail -n 6 > $LOGS/bench_after_$r.log
  grep "^| [13]" $LOGS/bench_before_$r.log $LOGS/bench_after_$r.log
  echo "elapsed $(( $(date +%s) - t0 )) s"
done
PYTHONPATH=. python3 results/logs/bench/fused_decode/profile_script.py > $LOGS/profile_after.log 2>&1
grep -v "Warn\|warn" $LOGS/profile_after.log | grep -A6 "=="
tar -czf $OUT/call5.tgz -C $OUT call5
echo "elapsed $(( $(date +%s) - t0 )) s"
