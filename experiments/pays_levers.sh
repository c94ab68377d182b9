#!/usr/bin/env bash
# One lever of issue 9's table: a short task-adaptive pretraining on SST-2's unlabelled sentences,
# then one fine-tune of it and one of the same architecture and tokenizer at random initialisation
# (first 2,000 SST-2 training sentences, lr 1e-3, seed 1, best dev epoch of 10). The corpus keeps
# recipes/corpus/default.yaml's dupe_factor 10: ten differently packed copies of the text, so 1,500
# steps see part of one pass over the copies (the recipe's corpus packs the text once).
#   bash experiments/pays_levers.sh NAME VOCAB SEQ_LEN BATCH MASK_PROB [STEPS] [POOLING]
#   bash experiments/pays_levers.sh v2k-t32 2000 32 64 0.15          # one row of the table
# Needs bench/out/pays2/sst2_train_sentences.txt (written by bench/pretraining_pays.py).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1 VOCAB=$2 SEQ=$3 BATCH=$4 MASK=$5 STEPS=${6:-1500} POOLING=${7:-mean}
export PYTHONPATH="$PWD/src"
bertcli() { .venv/bin/python -m bertcli -q "$@"; }
DATA=${DATA:-../shared/data}
TEXT=bench/out/pays2/sst2_train_sentences.txt
L=bench/out/levers/$NAME
mkdir -p "$L"
head -n 2001 "$DATA/glue/sst2/train.tsv" > "$L/train2000.tsv"
[ -d "$L/tok" ] || bertcli tokenize train --input "$TEXT" --out "$L/tok" --vocab-size "$VOCAB" --lowercase
[ -d "$L/corpus" ] || bertcli build-corpus recipes/corpus/default.yaml --input "$TEXT" --tokenizer "$L/tok" \
    --out "$L/corpus" --max-seq-len "$SEQ" --objective mlm --masking dynamic \
    --set eval_fraction=0.02 --set masked_lm_prob="$MASK"
[ -d "$L/pre/final" ] || bertcli pretrain recipes/pretrain/sst2-tapt.yaml --corpus "$L/corpus" --out "$L/pre" \
    --max-steps "$STEPS" --batch-size "$BATCH" --set train.save_every=100000 --set train.eval_every="$STEPS" \
    --set runtime.threads=1
[ -d "$L/scratch/final" ] || bertcli pretrain recipes/pretrain/sst2-tapt.yaml --corpus "$L/corpus" --out "$L/scratch" \
    --max-steps 0 --set runtime.progress=none
for init in pre scratch; do
  [ -d "$L/ft-$init-$POOLING/final" ] || bertcli finetune recipes/finetune/sst2.yaml --init "$L/$init" \
      --out "$L/ft-$init-$POOLING" --train "$L/train2000.tsv" --dev "$DATA/glue/sst2/dev.tsv" --epochs 10 \
      --lr 1e-3 --seed 1 --pooling "$POOLING" --set runtime.progress=none --set runtime.threads=1
done
.venv/bin/python - "$L" "$POOLING" <<'PY'
import json, sys
from pathlib import Path
L, pooling = Path(sys.argv[1]), sys.argv[2]
def best(run):
    return max(json.loads(l)["accuracy"] for l in (L / run / "metrics.jsonl").read_text().splitlines() if '"dev"' in l)
held = [json.loads(l) for l in (L / "pre" / "metrics.jsonl").read_text().splitlines() if '"eval"' in l][-1]
pre, scr = best(f"ft-pre-{pooling}"), best(f"ft-scratch-{pooling}")
print(f"{L.name}: held-out MLM accuracy {held['mlm_accuracy']:.3f}; SST-2 2k ({pooling}): pretrained {pre:.4f}, "
      f"random {scr:.4f}, gain {100 * (pre - scr):+.1f} points")
PY
