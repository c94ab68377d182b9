#!/usr/bin/env bash
# The real path, end to end: a SentencePiece tokenizer trained on the Gutenberg books, a corpus built
# from them, a small BERT pretrained on it, fine-tuned on GLUE SST-2 and evaluated on its dev set,
# next to the same fine-tune from random initialisation (a 0-step "pretrain": same architecture,
# same tokenizer, weights as initialised). Each fine-tune runs on the full training set and on its
# first LOW_RESOURCE sentences, where what pretraining brings shows most.
#
#   bash experiments/sst2_pretrained_vs_scratch.sh
# Pretraining runs the recipe (2,500 steps), then EXTEND_TO more in total with --resume, which
# stretches the linear decay to the new end (a second phase at a lower learning rate).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/sst2}
PRETRAIN_RECIPE=${PRETRAIN_RECIPE:-recipes/pretrain/gutenberg-bench.yaml}
FINETUNE_RECIPE=${FINETUNE_RECIPE:-recipes/finetune/sst2.yaml}
EXTEND_TO=${EXTEND_TO:-6000}
LOW_RESOURCE=${LOW_RESOURCE:-2000}
mkdir -p "$OUT"

[ -d "$OUT/tok" ] || bertcli tokenize train --input "$DATA"/corpus/gutenberg/*.txt --out "$OUT/tok" \
    --vocab-size 8000 --lowercase
[ -d "$OUT/corpus" ] || bertcli build-corpus recipes/corpus/default.yaml --input "$DATA"/corpus/gutenberg/*.txt \
    --tokenizer "$OUT/tok" --out "$OUT/corpus" --dupe-factor 5
bertcli inspect "$OUT/corpus" --dump 5000 > "$OUT/dump.jsonl"
python bench/corpus_stats.py < "$OUT/dump.jsonl" | tee "$OUT/corpus_stats.txt"

[ -d "$OUT/pretrained/final" ] || bertcli pretrain "$PRETRAIN_RECIPE" --corpus "$OUT/corpus" --out "$OUT/pretrained"
if [ ! -d "$OUT/pretrained/steps/step-$(printf %08d "$EXTEND_TO")" ]; then
  bertcli pretrain --out "$OUT/pretrained" --resume --set train.max_steps="$EXTEND_TO"
fi
[ -d "$OUT/scratch/final" ] || bertcli pretrain "$PRETRAIN_RECIPE" --corpus "$OUT/corpus" --out "$OUT/scratch" \
    --set train.max_steps=0
bertcli eval "$OUT/pretrained" --data "$OUT/corpus" --json > "$OUT/pretrain_eval.json"

head -n $((LOW_RESOURCE + 1)) "$DATA/glue/sst2/train.tsv" > "$OUT/sst2_train_low.tsv"
for init in pretrained scratch; do
  for size in full low; do
    train="$DATA/glue/sst2/train.tsv"; [ "$size" = low ] && train="$OUT/sst2_train_low.tsv"
    epochs=3; [ "$size" = low ] && epochs=10
    [ -f "$OUT/sst2_dev_${init}_$size.json" ] && continue
    rm -rf "$OUT/ft-$init-$size"
    bertcli finetune "$FINETUNE_RECIPE" --init "$OUT/$init" --out "$OUT/ft-$init-$size" \
        --train "$train" --dev "$DATA/glue/sst2/dev.tsv" --epochs "$epochs"
    bertcli eval "$OUT/ft-$init-$size" --data "$DATA/glue/sst2/dev.tsv" --json > "$OUT/sst2_dev_${init}_$size.json"
  done
done
echo "held-out MLM/NSP: $(cat "$OUT/pretrain_eval.json")"
for f in "$OUT"/sst2_dev_*.json; do echo "$(basename "$f" .json): $(cat "$f")"; done
