cd "$(git rev-parse --show-toplevel)"  # the repository
date
# retrieval.sh's default MIX when this ran (multivalue in the needles' order); the results were later renamed results/retrieval_needles.*
GPUS=0 MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue" \
  bash results/retrieval.sh
echo "retrieval.sh exit $?"
date
