#!/usr/bin/env bash
# one call: the headline gpt and swan, then +distill-adam with N at 1,6 vs 3,6, two seeds, 5%
mkdir -p "$OUT"
(while sleep 15; do tar -czf "$OUT/partial.tgz" out-gutenberg/*.log out-gutenberg/*/log.jsonl results/conversion_layers* 2>/dev/null; done) &
nvidia-smi -L
GPUS=0,1 RUNS=out-gutenberg RECIPES="+distill-adam-n16 +distill-adam-n36" SEEDS="11 12" STEPS=100 RETRIEVAL_RUNS= \
    PREFIX=results/conversion_layers bash results/conversion.sh > "$OUT/conversion_layers.log" 2>&1
echo "exit $?"
tar -czf "$OUT/partial.tgz" out-gutenberg/*.log out-gutenberg/*/log.jsonl results/conversion_layers*
tail -n 12 "$OUT/conversion_layers.log"
