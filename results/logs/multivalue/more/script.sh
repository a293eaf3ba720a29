# One call on one H100 (versions.txt). The A/B's runs were trained by multivalue.sh and evaluated
# there with --scale_from_L (through EVAL_ARGS), then evaluated again with the paper's scaling on
# the same checkpoints; the per-run files are renamed here to the names multivalue.sh's FROM_L=1
# now gives (PREFIX_RUN.csv: the paper's; PREFIX_RUN_from_L.csv: from L; "off" is in both, equal).
GPUS=0 RUNS=out-mv VARIANTS="random more" SEEDS="1337 2" BASES=off EVAL_ARGS="--num_keys=4,16 --scale_from_L" \
    PREFIX=results/sl_from bash results/multivalue.sh
for name in random-seed1337 more-seed1337 random-seed2 more-seed2; do
    python3 extrapolate.py out-mv/$name --task=retrieval --tasks=multivalue,multikey,passkey --num_keys=4,16 \
        --scale_base=off --tune_scale --lengths=512,1024,2048,4096,8192,16384 --out=results/sl_paper_$name &
done; wait
# the same, as one command now:
#   VARIANTS="random more" SEEDS="1337 2" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 PREFIX=results/multivalue_more \
#       bash results/multivalue.sh
# Beside the trainings, the GPU tests (gpu_tests_beside.log): python3 -m pytest -q tests/test_attention_decode_triton.py
# tests/test_model.py tests/test_attention_triton.py tests/test_attention.py. The one failure is a CPU test of peak
# resident memory, which counted the CUDA build of torch itself (2.61 GB against a 2.5 GB bound); it now
# measures the rise over the peak before the call.
# Joined (on a CPU):
python results/multivalue.py results/logs/multivalue/more/multivalue_more_*.csv --out=results/multivalue_more
