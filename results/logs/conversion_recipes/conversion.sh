cd "$(git rev-parse --show-toplevel)"  # the repository
date
GPUS=1 RUNS=out-gutenberg RECIPES="+distill +distill-fade +distill-lr2 +distill-kl +distill-adam" STEPS="40 100 200" \
    RETRIEVAL_RUNS= PREFIX=results/conversion_recipes bash results/conversion.sh
echo "conversion.sh exit $?"
date
export CUDA_VISIBLE_DEVICES=1
python3 -m pytest -q tests/test_model.py tests/test_attention_decode_triton.py tests/test_attention_triton.py -x 2>&1 | tail -n 15 > logs/gpu_tests.log
for compiled in False True; do
    python3 bench.py --archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton \
        --compile_decode=$compiled --out=logs/bench_decode_compiled_$compiled > logs/bench_decode_compiled_$compiled.log 2>&1
done
date
python3 bench_attention.py > logs/bench_attention.log 2>&1
date
echo ALLDONE
