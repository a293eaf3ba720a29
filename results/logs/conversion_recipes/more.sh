cd "$(git rev-parse --show-toplevel)"  # the repository
export CUDA_VISIBLE_DEVICES=1
R=out-gutenberg
common="config/gutenberg.py --init_from=$R/gpt --arch=swan --warmup_iters=10 --compile=false --learning_rate=1e-3 --nope_layers=measured --distill_from=$R/gpt --overwrite"
python3 train.py $common --max_iters=100 --eval_interval=100 --seed=7 --out_dir=$R/gpt2swan+distill-seed7-100 > $R/gpt2swan+distill-seed7-100.log 2>&1 &
python3 train.py $common --max_iters=100 --eval_interval=100 --source_optimizer --distill_weight=1 --out_dir=$R/gpt2swan+distill-adam-kl-100 > $R/gpt2swan+distill-adam-kl-100.log 2>&1 &
python3 train.py $common --max_iters=200 --warmup_iters=20 --eval_interval=200 --source_optimizer --distill_weight=1 --out_dir=$R/gpt2swan+distill-adam-kl-200 > $R/gpt2swan+distill-adam-kl-200.log 2>&1 &
wait
python3 extrapolate.py $R/gpt $R/swan $R/gpt2swan+distill-seed7-100 $R/gpt2swan+distill-adam-kl-100 $R/gpt2swan+distill-adam-kl-200 --lengths=512,4096,16384 --out=results/conversion_recipes2_loss
python3 results/conversion.py --losses=results/conversion_recipes2_loss.csv --out=results/conversion_recipes2
echo MOREDONE
