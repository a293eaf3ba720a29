cd "$(git rev-parse --show-toplevel)"  # the repository
# one H100 (480 s), k16's runs being the baseline (results/logs/multivalue/keys/, the same evaluation)
GPUS=0 RUNS=out-mv VARIANTS="mv-k16 more-k16" SEEDS="1337 2" BASES=off FROM_L=1 EVAL_ARGS=--num_keys=4,16 \
    PREFIX=results/multivalue_mix bash results/multivalue.sh
python results/multivalue.py results/logs/multivalue/keys/multivalue_k16_k16-seed*.csv \
    results/logs/multivalue/mix/multivalue_mix_*.csv --out=results/multivalue_mix
python results/multivalue.py results/logs/multivalue/keys/multivalue_k16_k16-seed*.csv \
    results/logs/multivalue/mix/multivalue_mix_*.csv --out=results/multivalue_mix_k16 --task="multikey K=16"   # the figure; its CSV equals the one above
