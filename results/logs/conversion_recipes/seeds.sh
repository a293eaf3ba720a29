cd "$(git rev-parse --show-toplevel)"  # the repository
R=out-gutenberg
common="config/gutenberg.py --init_from=$R/gpt --arch=swan --warmup_iters=10 --compile=false --learning_rate=1e-3 --nope_layers=measured --distill_from=$R/gpt --overwrite --max_iters=100 --eval_interval=100"
runs=()
for seed in 11 12 13; do
  CUDA_VISIBLE_DEVICES=0 python3 train.py $common --seed=$seed --out_dir=$R/gpt2swan+distill-seed$seed-100 > $R/gpt2swan+distill-seed$seed-100.log 2>&1 &
  CUDA_VISIBLE_DEVICES=1 python3 train.py $common --seed=$seed --source_optimizer --out_dir=$R/gpt2swan+distill-adam-seed$seed-100 > $R/gpt2swan+distill-adam-seed$seed-100.log 2>&1 &
  runs+=($R/gpt2swan+distill-seed$seed-100 $R/gpt2swan+distill-adam-seed$seed-100)
done
wait
CUDA_VISIBLE_DEVICES=0 python3 extrapolate.py $R/gpt $R/swan "${runs[@]}" --lengths=512,4096,16384 --out=results/conversion_seeds_loss
python3 results/conversion.py --losses=results/conversion_seeds_loss.csv --out=results/conversion_seeds
echo SEEDSDONE
