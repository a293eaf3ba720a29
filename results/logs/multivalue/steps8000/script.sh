cd REPO  # a copy of the repository
date
GPUS=0,1 RUNS=out-multivalue-8000 PREFIX=results/multivalue8000 VARIANTS=random SEEDS="1337 2" ITERS=8000 bash results/multivalue.sh
echo "multivalue.sh exit $?"
date
