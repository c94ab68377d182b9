#!/usr/bin/env bash
# The real path, end to end: a SentencePiece tokenizer trained on the Gutenberg books, a corpus built
# from them, a small BERT pretrained on it, fine-tuned on GLUE SST-2 and evaluated on its dev set,
# next to the same fine-tune from random initialisation (a 0-step "pretrain": same architecture,
# same tokenizer, weights as initialised).
#
#   bash bench/sst2_pretrained_vs_scratch.sh            # defaults below; PRETRAIN_STEPS=... to change
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/sst2}
PRETRAIN_RECIPE=${PRETRAIN_RECIPE:-recipes/pretrain/gutenberg-bench.yaml}
FINETUNE_RECIPE=${FINETUNE_RECIPE:-recipes/finetune/sst2.yaml}
mkdir -p "$OUT"

[ -d "$OUT/tok" ] || bertcli tokenize train --input "$DATA"/corpus/gutenberg/*.txt --out "$OUT/tok" \
    --vocab-size 8000 --lowercase
[ -d "$OUT/corpus" ] || bertcli build-corpus recipes/corpus/default.yaml --input "$DATA"/corpus/gutenberg/*.txt \
    --tokenizer "$OUT/tok" --out "$OUT/corpus" --dupe-factor 5
bertcli inspect "$OUT/corpus" --dump 5000 > "$OUT/dump.jsonl"
python bench/corpus_stats.py < "$OUT/dump.jsonl" | tee "$OUT/corpus_stats.txt"

[ -d "$OUT/pretrained/final" ] || bertcli pretrain "$PRETRAIN_RECIPE" --corpus "$OUT/corpus" --out "$OUT/pretrained"
[ -d "$OUT/scratch/final" ] || bertcli pretrain "$PRETRAIN_RECIPE" --corpus "$OUT/corpus" --out "$OUT/scratch" \
    --set train.max_steps=0
bertcli eval "$OUT/pretrained" --data "$OUT/corpus" --json > "$OUT/pretrain_eval.json"

for init in pretrained scratch; do
  rm -rf "$OUT/ft-$init"
  bertcli finetune "$FINETUNE_RECIPE" --init "$OUT/$init" --out "$OUT/ft-$init" \
      --train "$DATA/glue/sst2/train.tsv" --dev "$DATA/glue/sst2/dev.tsv"
  bertcli eval "$OUT/ft-$init" --data "$DATA/glue/sst2/dev.tsv" --json > "$OUT/sst2_dev_$init.json"
done
echo "held-out MLM/NSP: $(cat "$OUT/pretrain_eval.json")"
for init in pretrained scratch; do echo "SST-2 dev ($init): $(cat "$OUT/sst2_dev_$init.json")"; done
