#!/usr/bin/env bash
# The runs behind train/RESULTS.md and train/results.json (CPU, tiny preset), from the repo root:
#
#   bash train/run_results.sh [stage ...]      # stages: pretrain ablations le folds hapt12
#   python -m train.summarize --runs runs --figures train/figures --json --write train/results.json
#
# Every run is resumable: a finished run (its checkpoint holds held-out metrics) is skipped, an
# interrupted one continues from its last checkpoint (--resume, exact). Every choice is made on
# validation subjects (train.data: drawn from the training side of each split); test subjects are
# only scored. THREADS (default 1) torch threads per run; run stages side by side on more cores.
set -u
export GAITEDGE_NO_PROGRESS=1
PY=${PY:-python}
THREADS=${THREADS:-1}
CHAIN=train/chain.json   # the shipped bundle's chain (mounting auto)
MAIN=runs/abl/main/pretrain/checkpoint.pt
PRE_STEPS=${PRE_STEPS:-5000}   # the main MAE
ABL_STEPS=${ABL_STEPS:-1000}   # each ablation variant (and the main recipe at this length)
SEEDS=${SEEDS:-"0 1 2"}
COMMON=(--chain "$CHAIN" --threads "$THREADS" --log-every 50 --checkpoint-every 250 --resume)
mkdir -p runs/logs

done_run() {  # out folder -> 0 when its checkpoint carries final metrics
    [ -f "$1/checkpoint.pt" ] && $PY - "$1/checkpoint.pt" <<'EOF'
import sys, torch
m = torch.load(sys.argv[1], map_location="cpu", weights_only=False).get("metrics") or {}
sys.exit(0 if ("test" in m or "test_reconstruction_loss" in m) else 1)
EOF
}

run() {  # out, args... (train.pretrain / train.finetune / train.baseline module first)
    local out=$1; shift
    if done_run "$out" || [ -f "$out/result.json" ]; then return 0; fi
    local start=$SECONDS name=${out#runs/}
    $PY "$@" --out "$out" > "runs/logs/${name//\//_}.log" 2>&1 && status=ok || status=FAILED
    echo "$(date +%H:%M:%S) $name $status $((SECONDS - start)) s" | tee -a runs/logs/summary.txt
}

pretrain() {  # out, steps, extra args...
    local out=$1 steps=$2; shift 2
    run "$out" -m train.pretrain --preset tiny --data hapt,sisfall "${COMMON[@]}" \
        --max-steps "$steps" --warmup-steps $((steps / 20 < 200 ? steps / 20 : 200)) \
        --batch-size 256 "$@"
}

label_args() {  # labels token -> the labelled subset (fraction of each class, or subjects)
    case $1 in
        1pct) echo --label-fraction 0.01 ;;
        5pct) echo --label-fraction 0.05 ;;
        10pct) echo --label-fraction 0.1 ;;
        100pct) echo --label-fraction 1.0 ;;
        1subj) echo --label-subjects 1 ;;
        3subj) echo --label-subjects 3 ;;
    esac
}

# Fine-tuning length per amount of labels (steps, batch): few labels, few steps.
finetune() {  # out, labels token, seed, extra args...
    local out=$1 labels=$2 seed=$3; shift 3
    local length=(--max-steps 200 --batch-size 64)
    case $labels in
        10pct | 3subj) length=(--max-steps 300 --batch-size 128) ;;
        100pct) length=(--max-steps 300 --batch-size 256) ;;
    esac
    # shellcheck disable=SC2046
    run "$out" -m train.finetune --task activity "${COMMON[@]}" --warmup-steps 20 \
        --seed "$seed" $(label_args "$labels") "${length[@]}" "$@"
}

stage_pretrain() {
    pretrain runs/abl/main/pretrain "$PRE_STEPS" --patch-samples 8 --mask-ratio 0.75
}

stage_ablations() {  # each variant pretrained ABL_STEPS, scored on validation subjects
    pretrain runs/abl/short/pretrain "$ABL_STEPS" --patch-samples 8 --mask-ratio 0.75
    pretrain runs/abl/patch4/pretrain "$ABL_STEPS" --patch-samples 4 --mask-ratio 0.75
    pretrain runs/abl/patch16/pretrain "$ABL_STEPS" --patch-samples 16 --mask-ratio 0.75
    pretrain runs/abl/mask50/pretrain "$ABL_STEPS" --patch-samples 8 --mask-ratio 0.5
    pretrain runs/abl/mask90/pretrain "$ABL_STEPS" --patch-samples 8 --mask-ratio 0.9
    pretrain runs/abl/sensor/pretrain "$ABL_STEPS" --patch-samples 8 --token-mode sensor
    pretrain runs/abl/raw/pretrain "$ABL_STEPS" --patch-samples 8 --target raw
    pretrain runs/abl/corpus/pretrain "$ABL_STEPS" --patch-samples 8 \
        --data hapt,sisfall,mobifall,hapt@20,sisfall@100 --mount-prob 0.25
    # The best 1 %-label variant on validation (mask 0.5), pretrained 3x longer.
    pretrain runs/abl/mask50-3k/pretrain $((3 * ABL_STEPS)) --patch-samples 8 --mask-ratio 0.5
    for v in runs/abl/*/; do
        v=${v%/}
        [ -f "$v/pretrain/checkpoint.pt" ] || continue
        for seed in $SEEDS; do
            finetune "$v/ft1pct-s$seed" 1pct "$seed" --from "$v/pretrain/checkpoint.pt"
        done
        run "$v/probe-s0" -m train.finetune --task activity "${COMMON[@]}" --mode linear \
            --from "$v/pretrain/checkpoint.pt" --max-steps 300 --batch-size 256 \
            --warmup-steps 20 --lr 3e-3
    done
}

stage_le() {  # label efficiency: MAE (main) vs scratch vs gradient boosting on features
    for labels in 1pct 5pct 1subj 3subj 10pct 100pct; do
        for seed in $SEEDS; do
            finetune "runs/le/mae-$labels-s$seed" "$labels" "$seed" --from "$MAIN"
            finetune "runs/le/scratch-$labels-s$seed" "$labels" "$seed" --patch-samples 8
        done
    done
    for labels in 1pct 5pct 1subj 3subj 10pct 100pct; do
        for seed in $SEEDS; do
            # shellcheck disable=SC2046
            run "runs/le/gbm-$labels-s$seed" -m train.baseline --chain "$CHAIN" \
                --seed "$seed" $(label_args "$labels")
        done
    done
}

# SisFall, all five subject folds: fall head from scratch (the main MAE saw SisFall subjects that
# are test subjects of some fold), threshold chosen on the fold's validation subjects, scored at
# the runtime's streaming hop (10 samples) on every window of every trial.
stage_folds() {
    for fold in 0 1 2 3 4; do
        run "runs/sisfall/fold$fold" -m train.finetune --task fall --sisfall-fold "$fold" \
            --folds 5 "${COMMON[@]}" --patch-samples 8 --max-steps 300 --batch-size 256 \
            --warmup-steps 20 --fall-threshold val --eval-hop 10
    done
}

stage_hapt12() {
    run runs/hapt12 -m train.finetune --task activity --activity-classes 12 "${COMMON[@]}" \
        --from "$MAIN" --max-steps 600 --batch-size 256 --warmup-steps 30
}

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(pretrain ablations le folds hapt12)
for s in "${stages[@]}"; do "stage_$s"; done
