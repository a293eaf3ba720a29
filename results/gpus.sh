# Sourced by the results scripts that run their work side by side, once PYTHON is set. SLOTS: the
# GPU ids to use, from GPUS (comma-separated; default CUDA_VISIBLE_DEVICES, else every GPU torch
# sees, or 0 on a CPU, where it changes nothing). on_next_gpu starts a command in the background on
# the next of them, round robin; wait_all waits for every command started so and stops the script,
# with the logs' last lines, if one failed. A trap stops the background jobs when the script exits,
# so that a failure leaves no training or evaluation running behind it.
GPUS=${GPUS:-${CUDA_VISIBLE_DEVICES:-$($PYTHON -c "import torch; print(','.join(map(str, range(max(1, torch.cuda.device_count())))))")}}
read -ra SLOTS <<< "${GPUS//,/ }"
started=() next_slot=0
on_next_gpu() {  # COMMAND... (redirect its output at the call: on_next_gpu cmd > log 2>&1)
    CUDA_VISIBLE_DEVICES=${SLOTS[$next_slot]} "$@" &
    started+=($!)
    next_slot=$(((next_slot + 1) % ${#SLOTS[@]}))
}
wait_all() {  # LOGS...: the logs of what was started, shown if one failed
    for pid in "${started[@]}"; do
        wait "$pid" || { echo "a job failed; its log ends:" >&2; tail -n 3 "$@" >&2; exit 1; }
    done
    started=()
}
stop_children() { for p in $(jobs -p); do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; true; }
trap stop_children EXIT
