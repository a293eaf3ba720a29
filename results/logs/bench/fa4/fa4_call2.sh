#!/usr/bin/env bash
# FlashAttention-4 beside the window kernel: its wheels (carried in three parts, the 92 MB one
# split in two) installed offline, a check that its sliding window is ours, then
# `python bench_attention.py` (the five shapes) with its column (a second run: the window check now
# compares the gradients too, and bench_attention.py's FA4 column survives a failure to load it).
# Kept as the record of a run; the wheels came as fa4_call.sh says (two calls before it copied them).
OUT=${OUT:-results/logs/bench/fa4/run2}
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
# FlashAttention-4's window against ours and against float64, bf16, one small odd shape: the
# output and the three gradients
import torch
from flash_attn.cute import flash_attn_func
from attention import attention, _attention_torch
torch.manual_seed(0)
B, H, T, D, W = 2, 4, 1000, 64, 129
q, k, v, do = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(4))
q64, k64, v64 = (t.double().requires_grad_() for t in (q, k, v))
ref = _attention_torch(q64, k64, v64, W, "softmax", None, D ** -0.5)
ref = [ref, *torch.autograd.grad(ref, (q64, k64, v64), do.double())]
qo, ko, vo = (t.clone().requires_grad_() for t in (q, k, v))
ours = attention(qo, ko, vo, window=W, backend="triton")
ours = [ours, *torch.autograd.grad(ours, (qo, ko, vo), do)]
qf, kf, vf = (t.transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))
fa4 = flash_attn_func(qf, kf, vf, causal=True, window_size=(W - 1, 0))[0]
fa4 = [t.transpose(1, 2) for t in (fa4, *torch.autograd.grad(fa4, (qf, kf, vf), do.transpose(1, 2).contiguous()))]
rel = lambda a, b: ((a.double() - b.double()).norm() / b.double().norm()).item()
for name, i in (("out", 0), ("dq", 1), ("dk", 2), ("dv", 3)):
    print(f"{name}: relative error against float64: ours {rel(ours[i], ref[i]):.2e}, FlashAttention-4 "
          f"{rel(fa4[i], ref[i]):.2e}; ours against it {rel(ours[i], fa4[i]):.2e}")
PY
cat $OUT/window_check.log | tail -4
timeout 530 python3 bench_attention.py > $OUT/bench_attention.log 2>&1; echo "bench rc $?"
grep -v -i warn $OUT/bench_attention.log | tail -20
