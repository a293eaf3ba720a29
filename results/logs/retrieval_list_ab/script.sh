# multivalue's answer form, A/B: two swan runs, identical but for --retrieval_list
set -x
nvidia-smi -L
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue"
for form in and commas; do
  gpu=$([ $form = and ] && echo 0 || echo 1)
  CUDA_VISIBLE_DEVICES=$gpu python3 train.py config/gutenberg.py --arch=swan $MIX --retrieval_list=$form --max_iters=1000 \
      --eval_interval=500 --sample_tokens=0 --out_dir=out-ab/$form > $OUT/train_$form.log 2>&1 &
done
wait
for form in and commas; do tail -n 2 out-ab/$form/log.jsonl; done
CUDA_VISIBLE_DEVICES=0 python3 extrapolate.py out-ab/and --task=retrieval --tasks=multivalue,multikey --num_keys=4 --scale_base=off,32 \
    --lengths=512,1024,2048,4096 --out=$OUT/ab_and > $OUT/eval_and.log 2>&1 &
CUDA_VISIBLE_DEVICES=1 python3 extrapolate.py out-ab/commas --task=retrieval --tasks=multivalue,multikey --num_keys=4 --scale_base=off,32 \
    --lengths=512,1024,2048,4096 --out=$OUT/ab_commas > $OUT/eval_commas.log 2>&1 &
wait
for form in and commas; do grep "^|" $OUT/eval_$form.log; cp out-ab/$form/log.jsonl $OUT/$form.jsonl; done
