# The GPU experiments: 8 layers x 512 wide x 8 heads (29M parameters) trained at L = 512 on the
# Gutenberg books, window 128 (= L/4) for the S layers. Prepare the data once:
#   python data/prepare.py --dataset=path/to/gutenberg   (a folder with train/ and val/ books)
# then train each architecture with the same tokens, data order and schedule:
#   python train.py config/gutenberg.py --arch=swan --out_dir=out-gutenberg-swan
data_dir = "data/gutenberg"
out_dir = "out-gutenberg-swan"
arch = "swan"
n_layer = 8
n_head = 8
n_embd = 512
block_size = 512
window = 128
batch_size = 64
max_iters = 2000
warmup_iters = 200
learning_rate = 1.5e-3
eval_interval = 250
eval_iters = 20
log_interval = 25
compile = True
