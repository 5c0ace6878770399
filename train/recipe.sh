#!/usr/bin/env bash
# The whole training recipe on GPUs, from the repository root:
#
#   train/recipe.sh                      # OUT=runs/recipe; every visible GPU
#   SMOKE=1 OUT=/tmp/r train/recipe.sh   # CPU smoke: tiny models, a handful of steps
#
# Stages: MAE pretraining (`base` preset, AMP bf16, torchrun over all visible GPUs), fine-tuning
# (the multi-task teacher, HAPT 6 and 12 labels, SisFall subject folds), distillation into the
# CNN student (export.distill), a `large` preset run of a few hundred steps, then
# `python -m train.summarize --json`. Each stage logs to $OUT/logs/<stage>.log and appends its
# wall time and status to $OUT/stages.jsonl; train.recipe_report then writes $OUT/recipe.json
# (machine, per-stage wall time, steps/s, peak CUDA memory, held-out figures). The run folders
# follow train/run_results.sh's layout, which train.summarize reads.
#
# A failed stage is recorded and the recipe goes on with the stages that do not need it; the
# exit status is non-zero if any stage failed.
#
# Environment (defaults in brackets): OUT [runs/recipe], PY [python], CHAIN [train/chain.json],
# DATA_ROOT [$GAITEDGE_DATA_ROOT or ../shared/data], CACHE [$OUT/cache], PRETRAIN_DATA
# [hapt,sisfall], FOLDS [0 1 2 3 4; smoke: 0], NPROC [visible CUDA devices], SMOKE [0].
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-python}
SMOKE=${SMOKE:-0}
OUT=${OUT:-runs/recipe}
CHAIN=${CHAIN:-train/chain.json}
CACHE=${CACHE:-$OUT/cache}
PRETRAIN_DATA=${PRETRAIN_DATA:-hapt,sisfall}
export GAITEDGE_NO_PROGRESS=1
mkdir -p "$OUT/logs"
: > "$OUT/stages.jsonl"

# Visible GPUs without importing torch (seconds of CPU per import): nvidia-smi's list, cut to
# CUDA_VISIBLE_DEVICES when that is set.
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
    NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
    if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
        VISIBLE=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c . || true)
        [ "$VISIBLE" -lt "$NGPU" ] && NGPU=$VISIBLE
    fi
fi
NPROC=${NPROC:-$NGPU}
DATA=(--cache-dir "$CACHE")
[ -n "${DATA_ROOT:-}" ] && DATA+=(--data-root "$DATA_ROOT")

if [ "$SMOKE" = 1 ]; then
    PRESET=tiny; LARGE=small; FOLDS=${FOLDS:-0}
    # One torch thread: the smoke measures the recipe's wiring, not the CPU's speed.
    PRE_STEPS=(--max-steps 4 --warmup-steps 1 --batch-size 32 --log-every 1 --threads 1)
    FT_STEPS=(--max-steps 3 --warmup-steps 1 --batch-size 32 --log-every 1 --threads 1)
    LARGE_STEPS=(--max-steps 2 --warmup-steps 1 --batch-size 8 --log-every 1 --threads 1)
    DISTILL_STEPS=(--steps 3 --batch-size 32 --num-threads 1)
else
    PRESET=base; LARGE=large; FOLDS=${FOLDS:-0 1 2 3 4}
    PRE_STEPS=(--epochs 100 --warmup-steps 2000 --batch-size 512 --lr 1.5e-3)
    FT_STEPS=(--epochs 30 --warmup-steps 200 --batch-size 256 --lr 5e-4)
    LARGE_STEPS=(--max-steps 300 --warmup-steps 50 --batch-size 256 --log-every 10)
    DISTILL_STEPS=(--steps 2500)
fi

# One process per GPU under torchrun; a plain process on one device or on CPU.
launch() {
    if [ "$NPROC" -gt 1 ]; then
        $PY -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m "$@"
    else
        $PY -m "$@"
    fi
}

FAILED=0
stage() {  # name, run folder, command...
    local name=$1 dir=$2; shift 2
    local start status ms cpu
    start=$(date +%s%N)
    # bash's `time` gives the stage's CPU seconds (user + system, its child processes included).
    if cpu=$( { TIMEFORMAT='%U %S'; time "$@" > "$OUT/logs/$name.log" 2>&1; } 2>&1 ); then
        status=ok
    else
        status=failed; FAILED=1
    fi
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '{"name": "%s", "dir": "%s", "status": "%s", "wall_s": %d.%03d, "cpu_s": %s}\n' \
        "$name" "$dir" "$status" $((ms / 1000)) $((ms % 1000)) \
        "$(awk '{printf "%.2f", $1 + $2}' <<< "$cpu")" >> "$OUT/stages.jsonl"
    echo "$name: $status"
}

PRE=$OUT/default/pretrain
stage pretrain "$PRE" launch train.pretrain --preset "$PRESET" --data "$PRETRAIN_DATA" \
    --chain "$CHAIN" --amp bf16 --out "$PRE" "${PRE_STEPS[@]}" "${DATA[@]}"
FROM=(--from "$PRE/checkpoint.pt")
stage finetune-default "$OUT/default/finetune" launch train.finetune "${FROM[@]}" \
    --task activity,fall --amp bf16 --out "$OUT/default/finetune" "${FT_STEPS[@]}" "${DATA[@]}"
stage finetune-hapt6 "$OUT/hapt6" launch train.finetune "${FROM[@]}" --task activity \
    --activity-classes 6 --amp bf16 --out "$OUT/hapt6" "${FT_STEPS[@]}" "${DATA[@]}"
stage finetune-hapt12 "$OUT/hapt12" launch train.finetune "${FROM[@]}" --task activity \
    --activity-classes 12 --amp bf16 --out "$OUT/hapt12" "${FT_STEPS[@]}" "${DATA[@]}"
for fold in $FOLDS; do
    stage "finetune-sisfall-fold$fold" "$OUT/sisfall/fold$fold" launch train.finetune \
        "${FROM[@]}" --task fall --sisfall-fold "$fold" --folds 5 --amp bf16 \
        --out "$OUT/sisfall/fold$fold" "${FT_STEPS[@]}" "${DATA[@]}"
done
stage distill "$OUT/student" $PY -m export.distill \
    --teacher "$OUT/default/finetune/checkpoint.pt" --out "$OUT/student" \
    "${DISTILL_STEPS[@]}" "${DATA[@]}"
stage "pretrain-$LARGE" "$OUT/large" launch train.pretrain --preset "$LARGE" \
    --data "$PRETRAIN_DATA" --chain "$CHAIN" --amp bf16 --out "$OUT/large" \
    "${LARGE_STEPS[@]}" "${DATA[@]}"
stage summarize "$OUT/summary.json" \
    $PY -m train.summarize --runs "$OUT" --figures "$OUT/figures" --json \
    --write "$OUT/summary.json"

$PY -m train.recipe_report --out "$OUT" --smoke "$SMOKE" || FAILED=1
exit "$FAILED"
