#!/usr/bin/env bash
# The decoding matmuls timed alone (linear_sweep.py). Kept as the record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
mkdir -p $OUT/call3
PYTHONPATH=. timeout 400 python3 results/logs/bench/fewer_kernels/linear_sweep.py 2>&1 | grep -v -i warn > $OUT/call3/linear_sweep.log
grep "==" $OUT/call3/linear_sweep.log
