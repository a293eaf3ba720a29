cd REPO  # a copy of the repository
date
GPUS=0,1 RUNS=out-multivalue-4000 PREFIX=results/multivalue4000 VARIANTS="and random" SEEDS=1337 ITERS=4000 bash results/multivalue.sh
echo "multivalue.sh exit $?"
date
