cd "$(git rev-parse --show-toplevel)"  # the repository
# one host of 4 H100s: retrieval.sh with its default MIX (multikey on up to 16 keys); the GPU tests
# (tests/test_attention_triton.py, test_attention_decode_triton.py, test_model.py, test_attention.py)
# ran on the fourth GPU beside the trainings (gpu_tests_beside.log)
CUDA_VISIBLE_DEVICES=3 python3 -m pytest -q tests/test_attention_triton.py tests/test_attention_decode_triton.py \
    tests/test_model.py tests/test_attention.py &
FROM_L=1 GPUS=0,1,2,3 RUNS=out-retrieval bash results/retrieval.sh   # 819 s
wait
# then results/multigpu.sh on the same host (results/logs/multigpu/)
