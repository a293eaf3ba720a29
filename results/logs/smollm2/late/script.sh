cd REPO  # a copy of the repository
date
BOOKS=path/to/books GPUS=0,1 NAMES="swan-late-distill swan-late-random-distill" bash results/smollm2.sh
echo "smollm2.sh exit $?"
date
