# One call on one H100 (versions.txt): swan with retrieval.sh's mix but multikey's training examples
# holding up to 16 keys (multivalue up to 4), then retrieval.sh's evaluation to 128 L, with the
# paper's scaling and with --scale_from_L, side by side on the GPU.
MIX="--retrieval=0.5 --retrieval_start=0.5 --retrieval_answer_weight=10 --retrieval_keys=16 --retrieval_values=4 --retrieval_tasks=passkey,multikey,multikey,multivalue,multivalue --retrieval_order=random"
python3 train.py config/gutenberg.py --arch=swan $MIX --out_dir=out-k16/swan > out-k16/swan.log 2>&1
python3 extrapolate.py out-k16/swan --task=retrieval --tune_scale --max_len=65536 --out=results/retrieval_k16 > results/retrieval_k16.log 2>&1 &
python3 extrapolate.py out-k16/swan --task=retrieval --tune_scale --max_len=65536 --scale_from_L --out=results/retrieval_k16_from_L > results/retrieval_k16_from_L.log 2>&1 &
wait
# The two PNGs were drawn again on a CPU from the CSVs with retrieval.plot, after its line plot's
# title was shortened (it was cut off in a one-run figure).
