#!/usr/bin/env bash
# Whole `bertcli pretrain` runs of several model variants on one corpus, interleaved round by round
# (A, B, A, B), each run alone on both cores; prints each run's median tokens/s after its first
# logging interval. BERT-tiny-sized runs on SST-2's unlabelled training sentences (2,000-piece
# SentencePiece, SEQ-token packed sequences, dynamic masks), batch 64.
#   bash bench/step_cost.sh "mlm=--objective mlm" "electra=--objective electra"   # the default pair
#   SEQ=128 BATCH=32 bash bench/step_cost.sh "bert=--block bert" "modern=--block modern --set model.dropout=0"
# Env: OUT (bench/out/step-cost), ROUNDS (2), STEPS (200), SEQ (32), BATCH (64), PRESET (tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/step-cost}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-200}
SEQ=${SEQ:-32}
BATCH=${BATCH:-64}
PRESET=${PRESET:-tiny}
DATA=${BERTCLI_SHARED_DATA:-../shared/data}
B=.venv/bin/bertcli
if [ $# -eq 0 ]; then set -- "mlm=--objective mlm" "electra=--objective electra"; fi
mkdir -p "$OUT"
CORPUS="$OUT/corpus-$SEQ"
if [ ! -d "$CORPUS" ]; then
  tail -n +2 "$DATA/glue/sst2/train.tsv" | cut -f1 | sed 's/$/\n/' > "$OUT/sentences.txt"
  [ -d "$OUT/tok" ] || $B tokenize train --input "$OUT/sentences.txt" --out "$OUT/tok" --vocab-size 2000 --lowercase -q
  $B build-corpus --input "$OUT/sentences.txt" --tokenizer "$OUT/tok" --out "$CORPUS" --max-seq-len "$SEQ" \
    --objective mlm --masking dynamic -q
fi
for round in $(seq "$ROUNDS"); do
  for variant in "$@"; do
    name=${variant%%=*}
    read -r -a args <<< "${variant#*=}"
    rm -rf "$OUT/run-$name"
    $B pretrain --corpus "$CORPUS" --out "$OUT/run-$name" --preset "$PRESET" "${args[@]}" \
      --max-steps "$STEPS" --batch-size "$BATCH" --set train.log_every=20 --set runtime.threads=2 \
      --set runtime.progress=none -q > /dev/null
    .venv/bin/python - "$OUT/run-$name/metrics.jsonl" "$round" "$name" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
print(f"round {sys.argv[2]} {sys.argv[3]}: {statistics.median(r['tokens_per_s'] for r in rows[1:]):,.0f} tokens/s")
PY
  done
done
