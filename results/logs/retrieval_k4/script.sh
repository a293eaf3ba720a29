cd "$(git rev-parse --show-toplevel)"  # the repository
date
# MIX as given here is retrieval.sh's default since this run; the CSV and PNG were then renamed to results/retrieval.*
GPUS=0,1 RUNS=out-retrieval-random PREFIX=results/retrieval_random \
  MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue --retrieval_order=random" \
  bash results/retrieval.sh
echo "retrieval.sh exit $?"
date
