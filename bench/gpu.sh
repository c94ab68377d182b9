#!/usr/bin/env bash
# GPU benchmark: bertcli's pretraining step against Hugging Face BertForPreTraining (SDPA, and compiled).
#   bench/gpu.sh [python]          (run from the repository root, with src/ importable)
# 1. correctness: bertcli's fp32 losses on the GPU against the CPU (TF32 off), 8 steps, tiny model;
# 2. throughput at BERT-base, sequence 128, bf16, batch 256 (goal: >= 750k tokens/s on an H200);
# 3. the same at BERT-large, batch 128.
# Needs no data: batches are synthetic full-length sequences. SMOKE=1 runs tiny sizes on the CPU.
set -euo pipefail
PY=${1:-python}
export PYTHONPATH=${PYTHONPATH:-$PWD/src}
DEVICE=cuda
BASE="--layers 12 --hidden 768 --heads 12 --vocab 30522 --batch 256"
LARGE="--layers 24 --hidden 1024 --heads 16 --vocab 30522 --batch 128"
ROUNDS="--rounds 5 --steps 10"
if [[ "${SMOKE:-0}" == 1 ]]; then
  DEVICE=cpu
  BASE="--layers 2 --hidden 64 --heads 2 --vocab 1000 --batch 4"
  LARGE="--layers 2 --hidden 128 --heads 2 --vocab 1000 --batch 4"
  ROUNDS="--rounds 1 --steps 1"
fi
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
echo "== 1. correctness against the CPU"
$PY bench/pretrain.py --device $DEVICE --cpu-check 8 --layers 2 --hidden 128 --heads 2 --vocab 1000 --batch 8
echo "== 2. BERT-base, seq 128, bf16"
$PY bench/pretrain.py --device $DEVICE $BASE --dtypes bf16 $ROUNDS --compile --memory
echo "== 3. BERT-large, seq 128, bf16"
$PY bench/pretrain.py --device $DEVICE $LARGE --dtypes bf16 $ROUNDS --memory
