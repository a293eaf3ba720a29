cd "$(git rev-parse --show-toplevel)"  # the repository
R=out-gutenberg
common="config/gutenberg.py --init_from=$R/gpt --arch=swan --compile=false --learning_rate=1e-3 --nope_layers=measured --distill_from=$R/gpt --overwrite --source_optimizer"
runs=()
gpu=0
for steps in 150 300; do for seed in 11 12; do
  name=gpt2swan+distill-adam-seed$seed-$steps
  CUDA_VISIBLE_DEVICES=$gpu python3 train.py $common --seed=$seed --max_iters=$steps --warmup_iters=$((steps / 10)) --eval_interval=$steps --out_dir=$R/$name > $R/$name.log 2>&1 &
  runs+=($R/$name); gpu=$((1 - gpu))
done; done
wait
CUDA_VISIBLE_DEVICES=0 python3 extrapolate.py $R/gpt $R/swan "${runs[@]}" --lengths=512,4096,16384 --out=results/conversion_longer_loss
python3 results/conversion.py --losses=results/conversion_longer_loss.csv --out=results/conversion_longer
echo LONGERDONE
