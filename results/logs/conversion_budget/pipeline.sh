#!/usr/bin/env bash
# issue 12: the 1k prefill with the archs taking turns on an H100 (alone); issue 14: the budget curve with held-out books
cd .
t0=$(date +%s)
stamp() { echo "$1 $(( $(date +%s) - t0 )) s" >> logs/times.txt; }
for i in 1 2 3; do
    python3 bench.py --archs=gpt,swan --contexts=1024,4096 --batches=1,8 --prefill_rounds=100 --out=bench_out/prefill_rounds_$i \
        > logs/prefill_rounds_$i.log 2>&1
done
stamp prefill
export HOLDOUT=carried RUNS=out-heldout GPUS=0 RETRIEVAL_RUNS= SEEDS="11 12" RECIPES="+distill-adam +distill-adam-4Lw"
STEPS="100 200" PREFIX=results/conversion_budget bash results/conversion.sh > logs/conversion_budget.log 2>&1
echo "exit $?" >> logs/conversion_budget.log
stamp part1
STEPS="300" PREFIX=results/conversion_budget300 bash results/conversion.sh > logs/conversion_budget300.log 2>&1
echo "exit $?" >> logs/conversion_budget300.log
stamp part2
echo PIPELINE_DONE
