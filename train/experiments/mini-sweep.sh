#!/usr/bin/env bash
# The measurements behind coda-mini's shape and objective (docs/MODEL.md), at equal CPU time
# (about 300 s of training steps each, from step times measured with `coda train bench`):
#   1. two shapes, diffusion from scratch: mini-s (0.60 s/step), mini (1.07)
#      (mini-l, 2.23 s/step, is defined too; with mini already behind mini-s at this budget it was not run)
#   2. on the winner, mini-s: a causal (AR) phase for half the time, then diffusion for the other half
#      (a causal step costs more: the LM head runs on every token, not only the masked ones)
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
STEPS=${STEPS:-all}
if [ "$STEPS" = all ] || [ "$STEPS" = sizes ]; then
  run mini-s --set model.preset=mini-s --set train.steps=500 --set lr_schedule.warmup_steps=50
  run mini --set model.preset=mini --set train.steps=280 --set lr_schedule.warmup_steps=28
fi
if [ "$STEPS" = all ] || [ "$STEPS" = ar ]; then
  run mini-s-ar-causal --set model.preset=mini-s --set train.objective=causal --set train.steps=190 \
      --set lr_schedule.warmup_steps=19
  run mini-s-ar-diffusion --set model.init=checkpoint --set "model.path=$PWD/$OUT/mini-s-ar-causal/export" \
      --set train.steps=250 --set lr_schedule.warmup_steps=25
fi
