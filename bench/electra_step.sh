#!/usr/bin/env bash
# ELECTRA's step cost against an MLM step of the discriminator's size (issue 19's goal: at most 1.4x).
# BERT-tiny on SST-2's unlabelled training sentences (2,000-piece SentencePiece, 32-token packed
# sequences, dynamic masks), batch 64, both cores; ROUNDS interleaved rounds (mlm, electra), STEPS
# steps each; prints the median tokens/s each run logged after its first logging interval.
#   bash bench/electra_step.sh          # OUT=bench/out/electra-step ROUNDS=2 STEPS=200
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/electra-step}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-200}
DATA=${BERTCLI_SHARED_DATA:-../shared/data}
B=.venv/bin/bertcli
mkdir -p "$OUT"
if [ ! -d "$OUT/corpus" ]; then
  tail -n +2 "$DATA/glue/sst2/train.tsv" | cut -f1 | sed 's/$/\n/' > "$OUT/sentences.txt"
  $B tokenize train --input "$OUT/sentences.txt" --out "$OUT/tok" --vocab-size 2000 --lowercase -q
  $B build-corpus --input "$OUT/sentences.txt" --tokenizer "$OUT/tok" --out "$OUT/corpus" --max-seq-len 32 \
    --objective mlm --masking dynamic -q
fi
for round in $(seq "$ROUNDS"); do
  for objective in mlm electra; do
    rm -rf "$OUT/run-$objective"
    $B pretrain --corpus "$OUT/corpus" --out "$OUT/run-$objective" --preset tiny --objective "$objective" \
      --max-steps "$STEPS" --batch-size 64 --set train.log_every=20 --set runtime.threads=2 \
      --set runtime.progress=none -q > /dev/null
    .venv/bin/python - "$OUT/run-$objective/metrics.jsonl" "$round" "$objective" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
print(f"round {sys.argv[2]} {sys.argv[3]}: {statistics.median(r['tokens_per_s'] for r in rows[1:]):,.0f} tokens/s")
PY
  done
done
