#!/usr/bin/env bash
# The runs behind train/RESULTS.md (CPU, tiny preset, patch 8). Run from the repository root
# after `python -m train.pretrain --preset tiny --data hapt,sisfall --patch-samples 8
#   --out runs/default/pretrain --max-steps 400 --warmup-steps 30 --batch-size 256`.
set -u
export GAITEDGE_NO_PROGRESS=1
PY=${PY:-python}
PRE=runs/default/pretrain/checkpoint.pt
FT="-m train.finetune --warmup-steps 20 --log-every 10"

run() {  # name, args...
    local name=$1; shift
    local start=$SECONDS
    $PY "$@" > "runs/logs/$name.log" 2>&1 && status=ok || status=FAILED
    echo "$name $status $((SECONDS - start)) s" | tee -a runs/logs/summary.txt
}
mkdir -p runs/logs

# 1. The shipped multi-task model: HAPT 6 activities + SisFall fall, train subjects only.
run default $FT --from $PRE --task activity,fall --out runs/default/finetune \
    --max-steps 400 --batch-size 256 --rotate-max-deg 30
# 2. HAPT with 12 labels (transitions included).
run hapt12 $FT --from $PRE --task activity --activity-classes 12 --out runs/hapt12 \
    --max-steps 300 --batch-size 256
# 3. Label efficiency on HAPT (6 activities): MAE init vs scratch, 1 / 10 / 100 % of windows.
for init in mae scratch; do
    from=""; [ $init = mae ] && from="--from $PRE"
    run le-$init-100 $FT $from --patch-samples 8 --task activity --label-fraction 1.0 \
        --out runs/le/$init-100 --max-steps 300 --batch-size 256
    run le-$init-10 $FT $from --patch-samples 8 --task activity --label-fraction 0.1 \
        --out runs/le/$init-10 --max-steps 150 --batch-size 128
    run le-$init-1 $FT $from --patch-samples 8 --task activity --label-fraction 0.01 \
        --out runs/le/$init-1 --max-steps 100 --batch-size 32
done
# 4. SisFall subject folds (fall head alone, from scratch: the MAE above saw fold subjects).
for fold in 0 1; do
    run sisfall-fold$fold $FT --patch-samples 8 --task fall --sisfall-fold $fold --folds 5 \
        --out runs/sisfall/fold$fold --max-steps 300 --batch-size 256
done
