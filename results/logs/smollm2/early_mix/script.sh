#!/usr/bin/env bash
# The call behind this folder, one H100: swan-4n-k16-distill with its needle mix from 20% of the
# steps instead of half (1.6x the needle examples), beside SmolLM2 as shipped, smollm2.sh's evaluation.
cd "$(dirname "$0")/../../../.."  # the repository root
date
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
BOOKS=${BOOKS:-path/to/gutenberg} GPUS=0 NAMES="swan-4n-early-k16-distill" \
    PREFIX=out-smollm2-runs/early_mix bash results/smollm2.sh
echo "smollm2.sh exit $?"
date
