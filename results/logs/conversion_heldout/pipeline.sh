#!/usr/bin/env bash
# issue 12: the 1k prefill with the archs taking turns (alone on the machine); issue 14: windowed distillation, held-out books
cd .
t0=$(date +%s)
stamp() { echo "$1 $(( $(date +%s) - t0 )) s" >> logs/times.txt; }
for i in 1 2 3; do
    python3 bench.py --archs=gpt,swan --contexts=1024,4096 --batches=1,8 --prefill_rounds=100 --out=bench_out/prefill_rounds_$i \
        > logs/prefill_rounds_$i.log 2>&1
done
stamp prefill
export HOLDOUT=carried RUNS=out-heldout GPUS=0,1 RETRIEVAL_RUNS= STEPS=100 SEEDS="11 12 13"
RECIPES="+distill-adam +distill-adam-4L +distill-adam-4Lw" PREFIX=results/conversion_windows \
    bash results/conversion.sh > logs/conversion_windows.log 2>&1
echo "exit $?" >> logs/conversion_windows.log
stamp part1
RECIPES="+distill-adam-kl-4Lw +distill-adam-2Lw" PREFIX=results/conversion_windows2 \
    bash results/conversion.sh > logs/conversion_windows2.log 2>&1
echo "exit $?" >> logs/conversion_windows2.log
stamp part2
STEPS=40 RECIPES="+distill-adam +distill-adam-4Lw" PREFIX=results/conversion_windows40 \
    bash results/conversion.sh > logs/conversion_windows40.log 2>&1
echo "exit $?" >> logs/conversion_windows40.log
stamp part3
echo PIPELINE_DONE
