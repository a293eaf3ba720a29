#!/usr/bin/env bash
# The call behind this folder, one H100: swan-4n-k16-distill trained again and beside it the same
# with 1.67x the multivalue examples (swan-4n-mv-k16-distill), smollm2.sh's evaluation (SmolLM2 as
# shipped too, scaling off), then both runs' needles with dynamic scaling at a base tuned per run
# on held-out val books (extrapolate.py --tune_scale: those books are then left out of every number).
cd "$(dirname "$0")/../../../.."  # the repository root
date
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
R=out-smollm2-runs
BOOKS=${BOOKS:-path/to/gutenberg} GPUS=0 NAMES="swan-4n-k16-distill swan-4n-mv-k16-distill" \
    PREFIX=$R/layers_scaling bash results/smollm2.sh
echo "smollm2.sh exit $?"
date
python3 extrapolate.py $R/swan-4n-k16-distill $R/swan-4n-mv-k16-distill --data_dir=$R/data --task=retrieval \
    --lengths=2048,4096,8192,16384,32768 --num_keys=4 --trials=4 --tune_scale --out=$R/layers_scaling_tuned
echo "extrapolate.py exit $?"
date
