cd REPO  # a copy of the repository
date
GPUS=1,0 RUNS=out-gutenberg RECIPES="+distill-adam" SEEDS="13 14 15 16" STEPS="100 150" RETRIEVAL_RUNS= \
    PREFIX=results/conversion_adam_seeds bash results/conversion.sh
echo "conversion.sh exit $?"
date
