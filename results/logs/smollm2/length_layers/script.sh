#!/usr/bin/env bash
# The call behind this folder: swan-k16-distill's recipe trained at 8k (SmolLM2's own context,
# inside which the teacher was trained) and with 4 N layers instead of 8, beside the control trained
# again, all on one H100, then smollm2.sh's evaluation of the four models (SmolLM2 as shipped too).
cd "$(dirname "$0")/../../../.."  # the repository root
date
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
BOOKS=${BOOKS:-path/to/gutenberg} GPUS=0 NAMES="control swan-8k-k16-distill swan-4n-k16-distill" \
    PREFIX=out-smollm2-runs/length_layers bash results/smollm2.sh
echo "smollm2.sh exit $?"
date
