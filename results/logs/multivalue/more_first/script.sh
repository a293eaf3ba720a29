# One call on one H100 (versions.txt), the two commands side by side on GPU 0; per-run files renamed
# from PREFIX=results/mv10 and results/mv10b to PREFIX=results/logs/multivalue/more_first/multivalue.
GPUS=0 RUNS=out-mv VARIANTS="random more more8" SEEDS=1337 BASES=off EVAL_ARGS="--num_keys=4,16" PREFIX=results/mv10 \
    bash results/multivalue.sh &
GPUS=0 RUNS=out-mv VARIANTS="more" SEEDS=2 BASES=off EVAL_ARGS="--num_keys=4,16" PREFIX=results/mv10b \
    bash results/multivalue.sh &
wait
# Joined (on a CPU):
python results/multivalue.py results/logs/multivalue/more_first/multivalue_*.csv --out=results/logs/multivalue/more_first/summary
