"""What a frozen encoder knows about SST-2: logistic regression on `bertcli embed` sentence vectors.

    .venv/bin/python experiments/linear_probe.py CKPT [CKPT ...] [--train FILE] [--dev FILE]

For each checkpoint and pooling (mean over tokens, raw [CLS]), embeds the training and dev
sentences through the CLI, fits scikit-learn's LogisticRegression for C in {0.1, 1, 10, 100} and
prints the best dev accuracy. No weight of the encoder moves, so the figure measures the
pretrained representation itself; fine-tuning (bench/pretraining_pays.py) measures how far the
whole model gets from it. Needs scikit-learn (a test extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]


def read_tsv(path: Path, limit: int) -> tuple[list[str], list[int]]:
    rows = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    rows = rows[:limit] if limit else rows
    return [text for text, _ in rows], [int(label) for _, label in rows]


def embed(ckpt: str, texts: list[str], pooling: str) -> np.ndarray:
    result = subprocess.run([sys.executable, "-m", "bertcli", "-q", "embed", ckpt, "-", "--pooling", pooling],
                            input="\n".join(texts) + "\n", capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    if result.returncode != 0:
        raise SystemExit(f"bertcli embed {ckpt} failed: {result.stderr.strip()}")
    return np.array([json.loads(line)["embedding"] for line in result.stdout.splitlines()])


def main() -> None:
    data = ROOT.parent / "shared" / "data" / "glue" / "sst2"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--train", type=Path, default=data / "train.tsv")
    parser.add_argument("--train-size", type=int, default=2000, help="first N training sentences (0: all)")
    parser.add_argument("--dev", type=Path, default=data / "dev.tsv")
    args = parser.parse_args()
    train_texts, train_labels = read_tsv(args.train, args.train_size)
    dev_texts, dev_labels = read_tsv(args.dev, 0)
    for ckpt in args.checkpoints:
        for pooling in ("mean", "cls"):
            x_train, x_dev = embed(ckpt, train_texts, pooling), embed(ckpt, dev_texts, pooling)
            score, c = max((LogisticRegression(C=c, max_iter=2000).fit(x_train, train_labels).score(x_dev, dev_labels), c)
                           for c in (0.1, 1, 10, 100))
            print(f"{ckpt}\t{pooling}\tdev accuracy {score:.4f}\t(C={c:g}, {len(train_texts)} training sentences)",
                  flush=True)


if __name__ == "__main__":
    main()
