#!/usr/bin/env bash
# Issue 6's check of every masking scheme on real text: corpora built from WikiText-2 and from the
# Gutenberg books with static BERT masking (MLM + NSP pairs), whole-word masking, and MLM-only
# packed sequences with dynamic masking; the statistics are measured from `inspect --dump` output
# (bench/corpus_stats.py), not from the manifests.
#
#   bash experiments/masking_schemes.sh            # writes bench/out/schemes/, prints one table
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/schemes}
DUMP=${DUMP:-4000}
mkdir -p "$OUT"
declare -A INPUTS=([wikitext2]="$DATA/corpus/wikitext2/valid.txt $DATA/corpus/wikitext2/test.txt"
                   [gutenberg]="$(ls "$DATA"/corpus/gutenberg/*.txt | tr '\n' ' ')")
declare -A SCHEMES=([static]="" [wholeword]="--whole-word-mask" [mlm-dynamic]="--objective mlm --masking dynamic")
for text in wikitext2 gutenberg; do
  tok="$OUT/tok-$text"
  # shellcheck disable=SC2086
  [ -d "$tok" ] || bertcli -q tokenize train --input ${INPUTS[$text]} --out "$tok" --vocab-size 8000 --lowercase
  for scheme in static wholeword mlm-dynamic; do
    corpus="$OUT/$text-$scheme"
    # shellcheck disable=SC2086
    [ -d "$corpus" ] || bertcli -q build-corpus --input ${INPUTS[$text]} --tokenizer "$tok" --out "$corpus" \
        --dupe-factor 1 --seed 7 ${SCHEMES[$scheme]}
    printf '\n== %s, %s\n' "$text" "$scheme"
    bertcli inspect "$corpus" --dump "$DUMP" --epoch 1 | python bench/corpus_stats.py --tokenizer "$tok"
  done
done
