#!/usr/bin/env bash
# ELECTRA's step cost against an MLM step of the discriminator's size (issue 19's goal: at most 1.4x):
# BERT-tiny, 32-token sequences, batch 64 (bench/step_cost.sh's defaults).
#   bash bench/electra_step.sh          # OUT=bench/out/electra-step ROUNDS=2 STEPS=200
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/electra-step} exec bash bench/step_cost.sh "mlm=--objective mlm" "electra=--objective electra"
