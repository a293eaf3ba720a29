#!/usr/bin/env bash
# The fused matmul's tiles (linear_sweep.py), then bench.py's decode before (carry/s14/old) and after,
# with the decoding attention's new key added after its loop instead of selected into every tile.
OUT=${OUT:-results/logs/bench/fused_decode}
LOGS=$OUT/call3; mkdir -p $LOGS
t0=$(date +%s)
PYTHONPATH=. timeout 300 python3 results/logs/bench/fused_decode/linear_sweep.py 2>&1 | grep -v -i warn | tee $LOGS/linear_sweep.log
echo "elapsed $(( $(date +%s) - t0 )) s"
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
(cd carry/s14/old && python3 bench.py $A --out=$LOGS/bench_before 2>&1 | tail -n 6 > $LOGS/bench_before.log)
python3 bench.py $A --out=$LOGS/bench_after 2>&1 | tail -n 6 > $LOGS/bench_after.log
grep "^|" $LOGS/bench_before.log $LOGS/bench_after.log
PYTHONPATH=. python3 results/logs/bench/fused_decode/profile_script.py > $LOGS/profile_after.log 2>&1
grep -v "Warn\|warn" $LOGS/profile_after.log | grep -B1 -A3 "=="
tar -czf $OUT/call3.tgz -C $OUT call3
echo "elapsed $(( $(date +%s) - t0 )) s"
