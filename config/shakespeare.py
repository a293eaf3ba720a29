# The CPU default, written out: `python train.py` and `python train.py config/shakespeare.py`
# train the same model. A small SWAN (4 layers x 256 wide, window 64 at L = 256) on Shakespeare's
# plays; about 7 minutes on 2 CPU cores, a few seconds on a GPU.
data_dir = "data/shakespeare"
out_dir = "out"
arch = "swan"
n_layer = 4
n_head = 4
n_embd = 256
block_size = 256
window = 64
batch_size = 16
max_iters = 400
warmup_iters = 40
learning_rate = 3e-3
eval_interval = 100
eval_iters = 4
