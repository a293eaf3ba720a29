# Sourced by the results scripts that spread their work over GPUs, once PYTHON is set. SLOTS: the
# GPU ids to use, from GPUS (comma-separated; default CUDA_VISIBLE_DEVICES, else every GPU torch
# sees, or 0 on a CPU, where it changes nothing). A trap stops the script's background jobs when it
# exits, so that a failure leaves no training or evaluation running behind it.
GPUS=${GPUS:-${CUDA_VISIBLE_DEVICES:-$($PYTHON -c "import torch; print(','.join(map(str, range(max(1, torch.cuda.device_count())))))")}}
read -ra SLOTS <<< "${GPUS//,/ }"
stop_children() { for p in $(jobs -p); do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; true; }
trap stop_children EXIT
