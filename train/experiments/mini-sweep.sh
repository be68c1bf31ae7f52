#!/usr/bin/env bash
# The measurements behind coda-mini's shape and objective (docs/MODEL.md), at equal CPU time
# (about 300 s of training steps each, from step times measured with `coda train bench`):
#   1. three shapes, diffusion from scratch: mini-s (0.60 s/step), mini (1.07), mini-l (2.23)
#   2. on mini: a causal (AR) phase for half the time, then diffusion for the other half
# Each run ends with the held-out masked loss on the same fixed batches of the held-out
# packages (valid_loss in its summary line). Needs the data of the mini-cpu pipeline:
#   coda train pipeline train/recipes/mini-cpu.yaml  (its corpus, tokenizer and data steps)
set -euo pipefail
cd "$(dirname "$0")/../.."
CODA=${CODA:-.venv/bin/coda}
OUT=${OUT:-runs/sweep}
RECIPE=train/recipes/mini-pretrain.yaml
common=(--set train.eval_every=0 --set train.checkpoint_every=0 --set train.eval_batches=16 --set train.log_every=5)
run() { local name=$1; shift; "$CODA" train run "$RECIPE" "${common[@]}" --set "out=$OUT/$name" "$@" | tee "$OUT/$name.json"; }
mkdir -p "$OUT"
run mini-s --set model.preset=mini-s --set train.steps=500 --set lr_schedule.warmup_steps=50
run mini --set model.preset=mini --set train.steps=280 --set lr_schedule.warmup_steps=28
run mini-l --set model.preset=mini-l --set train.steps=135 --set lr_schedule.warmup_steps=14
run mini-ar-causal --set model.preset=mini --set train.objective=causal --set train.steps=120 \
    --set lr_schedule.warmup_steps=12
run mini-ar-diffusion --set model.init=checkpoint --set "model.path=$PWD/$OUT/mini-ar-causal/export" \
    --set train.steps=140 --set lr_schedule.warmup_steps=14
