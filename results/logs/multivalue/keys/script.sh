# Two calls, one H100 each (versions.txt), torch 2.11.0+cu130, triton 3.6.0. Per-run files of the
# k8s3 command renamed from PREFIX=results/multivalue_k8s3 to results/multivalue_k8 (the runs' names
# do not collide). Beside the first call, the GPU tests of tests/test_attention.py (gpu_tests_attention.log).
GPUS=0 RUNS=out-mv VARIANTS="k8 more-k8" SEEDS="1337 2" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 \
    PREFIX=results/multivalue_k8 bash results/multivalue.sh
# the second call, the two side by side on GPU 0:
GPUS=0 RUNS=out-mv VARIANTS="k16" SEEDS="1337 2" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 \
    PREFIX=results/multivalue_k16 bash results/multivalue.sh &
GPUS=0 RUNS=out-mv VARIANTS="k8 more-k8" SEEDS="3" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 \
    PREFIX=results/multivalue_k8s3 bash results/multivalue.sh &
wait
# Joined (on a CPU):
python results/multivalue.py results/logs/multivalue/keys/multivalue_k*.csv --out=results/multivalue_keys
# python results/multivalue.py results/logs/multivalue/keys/multivalue_k*.csv results/logs/multivalue/more/multivalue_more_random-*.csv --out=results/multivalue_keys_k16 --task="multikey K=16"
