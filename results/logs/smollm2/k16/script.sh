#!/usr/bin/env bash
cd "$(dirname "$0")/../../../.."  # the repository root
date
BOOKS=path/to/gutenberg GPUS=0,1 NAMES="swan-k16-distill swan-spread-k16-distill" bash results/smollm2.sh
echo "smollm2.sh exit $?"
date
