cd REPO  # a copy of the repository
date
GPUS=1,0 RUNS=out-gutenberg RECIPES="+distill-adam +distill-n-first" SEEDS="11 12" STEPS=100 RETRIEVAL_RUNS= \
    PREFIX=results/conversion_nfirst bash results/conversion.sh
echo "conversion.sh exit $?"
date
