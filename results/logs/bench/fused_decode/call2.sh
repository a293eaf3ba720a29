#!/usr/bin/env bash
# The decoding step with its matmuls fused (linear_decode_triton.py) and its attention taking the
# projection directly (attention_decode_step_triton): GPU tests, then bench.py's decode at 1k and
# 32k, batch 8, the code before (carry/s14/old: the previous commit's .py files) and after taking
# turns, then a per-kernel profile of the new step. Run from the repository root.
OUT=${OUT:-results/logs/bench/fused_decode}
LOGS=$OUT/call2; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
t0=$(date +%s)
timeout 240 python3 -m pytest -q tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 3 $LOGS/gpu_tests.log
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2; do
  (cd carry/s14/old && python3 bench.py $A --out=$LOGS/bench_before_$r 2>&1 | tail -n 6 > $LOGS/bench_before_$r.log)
  python3 bench.py $A --out=$LOGS/bench_after_$r 2>&1 | tail -n 6 > $LOGS/bench_after_$r.log
  tail -n 4 $LOGS/bench_before_$r.log $LOGS/bench_after_$r.log | grep "^|"
  echo "elapsed $(( $(date +%s) - t0 )) s"
done
PYTHONPATH=. python3 results/logs/bench/fused_decode/profile_script.py > $LOGS/profile_after.log 2>&1
grep -v "Warn\|warn" $LOGS/profile_after.log | head -60
tar -czf $OUT/call2.tgz -C $OUT call2
echo "elapsed $(( $(date +%s) - t0 )) s"
