#!/usr/bin/env bash
# The fused matmuls of the decoding step (linear_decode_triton.py): GPU tests, then bench.py's
# decode at 1k and 32k, batch 8, the code before (carry/s14/old: the previous commit's .py files)
# and after taking turns, then a per-kernel profile of each. Run from the repository root, after
#   mkdir -p carry/s14/old && git archive d90c0ad $(git ls-files "*.py" | grep -v "^tests/\|^results/") | tar -x -C carry/s14/old
# (as it ran, its files went to $OUT itself; the bench files that came back are in call1/, its
# profiles and test log did not come back: only 8 files come back from a call)
OUT=${OUT:-results/logs/bench/fused_decode}
mkdir -p $OUT
nvidia-smi -L | sed "s/ (UUID.*//" > $OUT/versions.txt
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/versions.txt
date +%s > $OUT/t0
timeout 200 python3 -m pytest -q -x tests/test_linear_decode_triton.py tests/test_attention_decode_triton.py tests/test_model.py > $OUT/gpu_tests.log 2>&1
tail -n 3 $OUT/gpu_tests.log
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
ROOT=$PWD
for r in 1 2; do
  (cd carry/s14/old && python3 bench.py $A --out=$OUT/bench_before_$r 2>&1 | tail -n 6 > $OUT/bench_before_$r.log)
  python3 bench.py $A --out=$OUT/bench_after_$r 2>&1 | tail -n 6 > $OUT/bench_after_$r.log
  tail -n 4 $OUT/bench_before_$r.log $OUT/bench_after_$r.log
  echo "elapsed $(( $(date +%s) - $(cat $OUT/t0) )) s"
done
(cd carry/s14/old && PYTHONPATH=. python3 $ROOT/results/logs/bench/fused_decode/profile_script.py > $OUT/profile_before.log 2>&1)
PYTHONPATH=. python3 results/logs/bench/fused_decode/profile_script.py > $OUT/profile_after.log 2>&1
grep "==" $OUT/profile_before.log $OUT/profile_after.log
echo "elapsed $(( $(date +%s) - $(cat $OUT/t0) )) s"
