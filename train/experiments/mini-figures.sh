#!/usr/bin/env bash
# The figures of docs/MODEL.md (section "Figures"), for the bundled coda-mini or $MODEL.
# Quality figures do not depend on the machine; the timings do (see each JSON's threads).
#   train/experiments/mini-figures.sh            # everything, into runs/figures/
#   LIMIT=200 train/experiments/mini-figures.sh  # fewer HumanEval problems (quicker, noisier)
set -euo pipefail
cd "$(dirname "$0")/../.."
CODA=${CODA:-.venv/bin/coda}
MODEL=${MODEL:-coda-mini}
OUT=${OUT:-runs/figures}
BENCH=${BENCH:-runs/coda-mini/corpus/bench.jsonl}   # the held-out packages (`coda train corpus`)
limit=(); [ -n "${LIMIT:-}" ] && limit=(--limit "$LIMIT")
mkdir -p "$OUT"
# Held-out single-line infill, fast (tau 0.9) and reference side by side, on 500 holes.
"$CODA" bench sample --model "$MODEL" --holes 500 --source "$BENCH" --json | tee "$OUT/bench-sample-heldout.json"
# HumanEval-infilling single-line (1,033), multi-line (first ${LIMIT:-all} of 5,815), HumanEval (164): pass@1.
# Canvases sized to the task: a line rarely needs more than 32 tokens, a multi-line hole 128 (the
# preset's 256 is for whole functions). A model that does not end its holes fills every canvas up to
# the budget, so this is what keeps the run to minutes on a CPU.
"$CODA" eval humaneval-infill-single --model "$MODEL" --max-new-tokens 32 --out "$OUT/he-single" > /dev/null
"$CODA" eval humaneval-infill-multi --model "$MODEL" --max-new-tokens 128 --out "$OUT/he-multi" "${limit[@]}" > /dev/null
"$CODA" eval humaneval --model "$MODEL" --out "$OUT/he" > /dev/null
for run in he-single he-multi he; do echo "$run: $(cat "$OUT/$run/summary.json")"; done
