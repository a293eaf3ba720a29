#!/usr/bin/env bash
# decode: default compile vs max-autotune (bench.py), then a per-kernel profile of both
OUT=${OUT:-results/logs/bench/compile_modes}  # run from the repository root; the GPU machine set OUT
mkdir -p $OUT
nvidia-smi -L | sed "s/ (UUID.*//" > $OUT/versions.txt  # (its versions.txt did not come back; the CSVs name the GPU and versions)
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/versions.txt
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
for r in 1 2; do
  for m in default max-autotune-no-cudagraphs; do
    python3 bench.py $A --compile_decode_mode=$m --out=$OUT/bench_${m}_$r 2>&1 | tail -n 30 > $OUT/bench_${m}_$r.log
  done
done
python3 results/logs/bench/compile_modes/profile_script.py default,max-autotune-no-cudagraphs > $OUT/profile.log 2>&1
# (this last step failed on the GPU machine: without PYTHONPATH=. the script could not import model; call2.sh ran the profile)
