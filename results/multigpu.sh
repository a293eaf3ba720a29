#!/usr/bin/env bash
# Data-parallel training on 1, 2, 4 and 8 GPUs (as many as there are): the headline model
# (config/gutenberg.py, 29M parameters, window 128) as swan and gpt at T = 8192, launched by
# torchrun at every process count with the same global batch (16 sequences) and the same 60
# iterations; the one-process swan run once more (how far two identical runs drift apart: the
# noise floor); then a swan run stopped halfway on 2 processes and resumed on 4 (on 1 where there
# are not 4 GPUs), which must end where the uninterrupted run ends.
#
#   bash results/multigpu.sh                                  # 4 H100s: 6 minutes (2 H100s: 5.5)
#   DEVICE=cpu NPROCS="1 2" BLOCK=64 GLOBAL_BATCH=4 ITERS=8 TRAIN_ARGS="--data_dir=data/shakespeare --compile=false \
#       --n_layer=2 --n_embd=64 --window=16" bash results/multigpu.sh   # the same path on CPU processes (gloo)
#
# The N = 1 runs of the architectures go side by side, one GPU each, where there are enough
# GPUs (each still alone on its GPU). PREFIX.csv gets tokens/s, the scaling efficiency (tokens/s
# at N over N x tokens/s at 1), peak memory per GPU and the loss agreement with N = 1 per (arch, N);
# PREFIX.png draws them; each run's log is RUNS/NAME.log and its per-iteration losses
# RUNS/NAME/log.jsonl.
set -euo pipefail
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-out-multigpu}
PREFIX=${PREFIX:-results/multigpu}
DEVICE=${DEVICE:-cuda}
ARCHS=${ARCHS:-swan gpt}
BLOCK=${BLOCK:-8192}
GLOBAL_BATCH=${GLOBAL_BATCH:-16}
ITERS=${ITERS:-60}
TRAIN_ARGS=${TRAIN_ARGS:-}
if [ "$DEVICE" = cuda ]; then
    GPUS=$($PYTHON -c "import torch; print(torch.cuda.device_count())")
else
    GPUS=0
fi
if [ -z "${NPROCS:-}" ]; then
    NPROCS=1
    for n in 2 4 8; do [ "$n" -le "$GPUS" ] && NPROCS="$NPROCS $n"; done
fi
RESUME_FROM=$(for n in $NPROCS; do [ "$n" -ge 2 ] && echo "$n" && break; done; true)
RESUME_FROM=${RESUME_FROM:-1}
RESUME_ON=1
for n in $NPROCS; do [ "$n" = 4 ] && RESUME_ON=4; done
mkdir -p "$RUNS"

torchrun() {  # processes, then the arguments of train.py
    local n=$1; shift
    $PYTHON -m torch.distributed.run --standalone --nproc_per_node="$n" train.py "$@"
}
train() {  # name, processes, then extra settings; a new run, in the foreground
    local name=$1 n=$2; shift 2
    if [ $((GLOBAL_BATCH % n)) -ne 0 ]; then
        echo "GLOBAL_BATCH=$GLOBAL_BATCH does not split over $n processes" >&2; exit 1
    fi
    torchrun "$n" config/gutenberg.py --device="$DEVICE" --block_size="$BLOCK" --batch_size=$((GLOBAL_BATCH / n)) \
        --max_iters="$ITERS" --warmup_iters=$((ITERS / 3)) --eval_interval=$((ITERS / 2)) --eval_iters=2 \
        --log_interval=1 --sample_tokens=0 --out_dir="$RUNS/$name" --overwrite "$@" $TRAIN_ARGS > "$RUNS/$name.log" 2>&1 \
        || { echo "training $name failed; its log:" >&2; tail -5 "$RUNS/$name.log" >&2; exit 1; }
}

names=()
i=0
pids=()
for arch in $ARCHS; do  # N = 1: side by side where each gets a GPU of its own
    if [ "$GPUS" -ge 2 ]; then
        CUDA_VISIBLE_DEVICES=$((i % GPUS)) train "$arch-n1" 1 --arch="$arch" &
        pids+=($!)
        i=$((i + 1))
        if [ "$i" -ge "$GPUS" ]; then for p in "${pids[@]}"; do wait "$p"; done; pids=(); i=0; fi
    else
        train "$arch-n1" 1 --arch="$arch"
    fi
    names+=("$arch-n1")
done
for p in "${pids[@]}"; do wait "$p"; done
for n in $NPROCS; do
    [ "$n" = 1 ] && continue
    for arch in $ARCHS; do
        train "$arch-n$n" "$n" --arch="$arch"
        names+=("$arch-n$n")
    done
done

# the noise floor: the N = 1 run of the first arch once more. GPU kernels do not add in a fixed
# order (atomics, autotuned splits), so two identical runs differ by rounding, which training
# amplifies; the other process counts can only be judged against this
first=${ARCHS%% *}
train "$first-n1-repeat" 1 --arch="$first"
names+=("$first-n1-repeat")

# stopped halfway on RESUME_FROM processes, resumed on RESUME_ON
resumed="$first-n$RESUME_FROM-resumed-n$RESUME_ON"
train "$resumed" "$RESUME_FROM" --arch="$first" --stop_at=$((ITERS / 2))
torchrun "$RESUME_ON" --init_from=resume --out_dir="$RUNS/$resumed" --batch_size=$((GLOBAL_BATCH / RESUME_ON)) \
    >> "$RUNS/$resumed.log" 2>&1 || { echo "resuming $resumed failed:" >&2; tail -5 "$RUNS/$resumed.log" >&2; exit 1; }

$PYTHON results/multigpu.py --runs="$RUNS" --out="$PREFIX" "${names[@]}" "$resumed"
