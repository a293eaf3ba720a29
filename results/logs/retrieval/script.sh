cd "$(git rev-parse --show-toplevel)"  # the repository
date
GPUS=0 bash results/retrieval.sh
echo "retrieval.sh exit $?"
date
