cd REPO  # a copy of the repository
date
GPUS=0,1 bash results/multivalue.sh
echo "multivalue.sh exit $?"
date
