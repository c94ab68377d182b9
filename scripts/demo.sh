#!/usr/bin/env bash
# The whole pipeline on an embedded default: CPython's documentation text and a small labelled set.
# tokenize -> build-corpus -> pretrain -> finetune -> eval, in a few minutes on 2 CPU cores.
set -euo pipefail
OUT=${DEMO_OUT:-demo-out}
rm -rf "$OUT"
mkdir -p "$OUT"
python scripts/demo_inputs.py "$OUT/inputs"

echo "== 1/5 tokenize train" >&2
bertcli tokenize train --input "$OUT"/inputs/text/*.txt --out "$OUT/tok" --vocab-size 3000 --lowercase

echo "== 2/5 build-corpus" >&2
bertcli build-corpus recipes/corpus/demo.yaml --input "$OUT"/inputs/text/*.txt --tokenizer "$OUT/tok" \
  --out "$OUT/corpus"

echo "== 3/5 pretrain" >&2
bertcli pretrain recipes/pretrain/demo.yaml --corpus "$OUT/corpus" --out "$OUT/run"

echo "== 4/5 finetune" >&2
bertcli finetune recipes/finetune/demo.yaml --init "$OUT/run" \
  --train "$OUT/inputs/sentiment_train.tsv" --dev "$OUT/inputs/sentiment_dev.tsv" --out "$OUT/ft"

echo "== 5/5 eval" >&2
bertcli eval "$OUT/run" --data "$OUT/corpus" --json > "$OUT/pretrain_metrics.json"
bertcli eval "$OUT/ft" --data "$OUT/inputs/sentiment_dev.tsv" --json > "$OUT/finetune_metrics.json"

cat <<SUMMARY
tokenizer:        $OUT/tok
corpus:           $OUT/corpus
pretrain run:     $OUT/run   (model in $OUT/run/final)
fine-tune run:    $OUT/ft    (best dev epoch in $OUT/ft/best)
pretrain metrics: $(cat "$OUT/pretrain_metrics.json")
finetune metrics: $(cat "$OUT/finetune_metrics.json")
SUMMARY
