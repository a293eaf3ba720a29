#!/usr/bin/env bash
# The committed code (call5's, less two unused kernel flags): GPU tests, then bench.py's decode
# before (carry/s14/old) and after, once each. Run from the repository root.
OUT=${OUT:-results/logs/bench/fused_decode}
LOGS=$OUT/call6; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
timeout 200 python3 -m pytest -q tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 1 $LOGS/gpu_tests.log
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
(cd carry/s14/old && python3 bench.py $A --out=$LOGS/bench_before 2>&1 | tail -n 6 > $LOGS/bench_before.log)
python3 bench.py $A --out=$LOGS/bench_after 2>&1 | tail -n 6 > $LOGS/bench_after.log
grep "^| [13]" $LOGS/bench_before.log $LOGS/bench_after.log
tar -czf $OUT/call6.tgz -C $OUT call6
