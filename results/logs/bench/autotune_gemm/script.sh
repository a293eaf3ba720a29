# One H100 (torch 2.11.0+cu130, triton 3.6.0), one call, in this order; each bench.py pair is the
# same command with and without inductor's GEMM autotuning (max-autotune GEMM templates) for the
# compiled decoding step. gpu_tests did not finish inside its 200 s limit here; they ran again later.
D=results/logs/bench/autotune_gemm
python3 bench_attention.py --decode > $D/bench_attention_decode.log
B="python3 bench.py --archs=gpt,swan --train_lengths=512 --contexts=1024,32768 --batches=8 --decode_backend=triton --compile_decode=True"
for i in 1 2; do
    $B --out=$D/base$i > $D/base$i.log
    TORCHINDUCTOR_MAX_AUTOTUNE_GEMM=1 $B --out=$D/gemm$i > $D/gemm$i.log
done
python3 bench_attention.py > $D/bench_attention.log
