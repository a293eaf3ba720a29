#!/usr/bin/env bash
# FlashAttention-4 beside the window kernel: its wheels (carried in three parts, the 92 MB one
# split in two) installed offline, a check that its sliding window is ours, then
# `python bench_attention.py` (the five shapes) with its column. Kept as the record of a run:
# carry/fa4a, carry/fa4b and carry/fa4c held the wheels of `pip download "flash-attn-4==4.0.0b36"
# --pre --python-version 3.12 --only-binary=:all: --platform manylinux_2_28_x86_64` (with
# nvidia-cutlass-dsl-libs-cu13 for this CUDA 13 torch instead of -cu12), the 92 MB one cut in two
# (cu13.part1, cu13.part2, and its sha256); two calls before this one copied the first two
# folders to $HOME/fa4 on the same machine.
OUT=${OUT:-results/logs/bench/fa4}
OUT=$(cd "$(dirname "$OUT")" 2>/dev/null && pwd)/$(basename "$OUT"); mkdir -p $OUT
W=$HOME/fa4
cp carry/fa4c/* $W/
cd $W && cat cu13.part1 cu13.part2 > nvidia_cutlass_dsl_libs_cu13-4.8.1-cp312-cp312-manylinux_2_28_x86_64.whl
echo "sha256 ok: $(sha256sum nvidia_cutlass_dsl_libs_cu13-4.8.1-cp312-cp312-manylinux_2_28_x86_64.whl | cut -c1-64 | cmp - cu13.sha256 && echo yes)"
WHEELS=$(ls *.whl)
python3 -c "import cuda.bindings" 2>/dev/null && WHEELS=$(ls *.whl | grep -v cuda_bindings)
python3 -c "import google.protobuf" 2>/dev/null && WHEELS=$(echo "$WHEELS" | grep -v protobuf)
python3 -c "import einops" 2>/dev/null && WHEELS=$(echo "$WHEELS" | grep -v einops)
python3 -m pip install -q --no-deps --no-index $WHEELS > $OUT/pip.log 2>&1; echo "pip rc $?"; tail -3 $OUT/pip.log
cd - > /dev/null
nvidia-smi -L | sed "s/ (UUID.*//" > $OUT/versions.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> $OUT/versions.txt
python3 -m pip list 2>/dev/null | grep -i -E "flash|cutlass|quack|tvm" >> $OUT/versions.txt
cat $OUT/versions.txt
python3 - > $OUT/window_check.log 2>&1 <<'PY'
# FlashAttention-4's window against ours and against float64, bf16, one small odd shape
import torch
from flash_attn.cute import flash_attn_func
from attention import attention, _attention_torch
torch.manual_seed(0)
B, H, T, D, W = 2, 4, 1000, 64, 129
q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
ref = _attention_torch(q.double(), k.double(), v.double(), W, "softmax", None, D ** -0.5)
ours = attention(q, k, v, window=W, backend="triton")
fa4 = flash_attn_func(*(t.transpose(1, 2).contiguous() for t in (q, k, v)), causal=True, window_size=(W - 1, 0))[0].transpose(1, 2)
rel = lambda a: ((a.double() - ref).norm() / ref.norm()).item()
print(f"relative error against float64: ours {rel(ours):.2e}, FlashAttention-4 {rel(fa4):.2e}; ours against it {((ours.float() - fa4.float()).norm() / fa4.float().norm()).item():.2e}")
PY
cat $OUT/window_check.log | tail -3
timeout 530 python3 bench_attention.py > $OUT/bench_attention.log 2>&1; echo "bench rc $?"
grep -v -i warn $OUT/bench_attention.log | tail -20
