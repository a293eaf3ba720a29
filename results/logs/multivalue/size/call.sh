#!/usr/bin/env bash
# The model-size A/B on one GPU machine, as it ran: `bash call.sh start` from the repository root
# (a copy of the repository in $S, the script started in the background), then `bash call.sh wait
# SECONDS`, in the same call and in each call after it while the machine is held: it waits for
# the script at most that long and packs what is there into $OUT. The prepared data/gutenberg
# folder was carried. After the retrieval A/B (multivalue.sh), the loss of the four runs from L
# to 32 L (extrapolate.py, scaling off).
S=${SCRATCH:-$HOME/size}  # a folder outside the repository (the run used a scratch folder)
P=results/logs/multivalue/size
case "$1" in
start)
    rm -rf $S && mkdir -p $S && cp -r . $S/repo && cd $S/repo
    nvidia-smi -L | sed "s/ (UUID.*//" > $P/versions.txt
    python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> $P/versions.txt
    setsid nohup bash -c "GPUS=0 RUNS=$S/runs VARIANTS='k16-16x512 k16-12x768' SEEDS='1337 2' BASES=off \
        EVAL_ARGS=--num_keys=4,16 PREFIX=$P/multivalue_size bash results/multivalue.sh \
        && python3 extrapolate.py $S/runs/k16-16x512-seed1337 $S/runs/k16-16x512-seed2 $S/runs/k16-12x768-seed1337 \
           $S/runs/k16-12x768-seed2 --scale_base=off --out=$P/loss_size > $P/loss_size.log 2>&1; echo \"script rc \$?\"" \
        > $S/script.log 2>&1 < /dev/null &
    sleep 5; cat $S/script.log ;;
wait)
    [ -d $S/repo ] || { echo "nothing here: this machine did not run the start"; exit 1; }
    end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ] && ! grep -q "script rc" $S/script.log; do sleep 10; done
    cd $S/repo
    tail -5 $S/script.log
    for f in $S/runs/*.log $P/*.log; do
        [ -f "$f" ] && echo "$f: $(tail -c 300 $f | tr '\r' '\n' | tail -1)"; done
    mkdir -p $S/pack && cp $S/runs/*.log $S/pack/ 2>/dev/null
    for d in $S/runs/*/; do n=$(basename $d); [ -f $d/log.jsonl ] && cp $d/log.jsonl $S/pack/$n.jsonl; done
    tar czf $OUT/size.tgz -C $S/repo $P -C $S pack script.log
    ls -la $OUT ;;
esac
