#!/usr/bin/env bash
OUT=${OUT:-results/logs/bench/compile_modes}  # run from the repository root; the GPU machine set OUT
mkdir -p $OUT
export PYTHONPATH=$PWD
A="--archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True --train_steps=1 --warmup_steps=1"
TORCHINDUCTOR_MAX_AUTOTUNE_GEMM_BACKENDS=TRITON python3 bench.py $A --compile_decode_mode=max-autotune-no-cudagraphs --out=$OUT/bench_tritongemm 2>&1 | tail -n 8 > $OUT/bench_tritongemm.log
python3 bench.py $A --out=$OUT/bench_default 2>&1 | tail -n 8 > $OUT/bench_default.log
TORCHINDUCTOR_MAX_AUTOTUNE_GEMM_BACKENDS=TRITON python3 results/logs/bench/compile_modes/profile_script.py max-autotune-no-cudagraphs > $OUT/profile_tritongemm.log 2>&1
python3 results/logs/bench/compile_modes/profile_script.py default > $OUT/profile_default.log 2>&1
