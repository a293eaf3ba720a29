#!/usr/bin/env bash
# The decoding attention kernel timed alone (ring_sweep.py). Kept as the record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
mkdir -p $OUT/call2
PYTHONPATH=. timeout 300 python3 results/logs/bench/fewer_kernels/ring_sweep.py 2>&1 | grep -v -i warn | tee $OUT/call2/ring_sweep.log
