#!/usr/bin/env bash
# The slot loop's software pipelining timed alone (ring_sweep6.py). Kept as the record of a run.
OUT=${OUT:-results/logs/bench/fewer_kernels}
mkdir -p $OUT/call6
PYTHONPATH=. timeout 300 python3 results/logs/bench/fewer_kernels/ring_sweep6.py 2>&1 | grep -v -i warn | tee $OUT/call6/ring_sweep.log
