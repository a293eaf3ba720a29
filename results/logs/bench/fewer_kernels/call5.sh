#!/usr/bin/env bash
# After the review's mends (nn.RMSNorm's default eps in the split norm, more test cases): the GPU
# tests of the decoding files and the model, then bench.py's decode twice. Kept as the record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
OUT=$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT"); mkdir -p $OUT
LOGS=$OUT/call5; mkdir -p $LOGS
nvidia-smi -L | sed "s/ (UUID.*//" > $LOGS/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $LOGS/versions.txt
t0=$(date +%s)
timeout 240 python3 -m pytest -q tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $LOGS/gpu_tests.log 2>&1
tail -n 3 $LOGS/gpu_tests.log
echo "elapsed $(( $(date +%s) - t0 )) s"
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2; do
  python3 bench.py $A --out=$LOGS/bench_new_$r 2>&1 | tail -n 6 > $LOGS/bench_new_$r.log
  grep "^| [13]" $LOGS/bench_new_$r.log | awk -F'|' '{print $2,$5,$8}'
done
tar -czf $OUT/call5.tgz -C $OUT call5
echo "elapsed $(( $(date +%s) - t0 )) s"
