"""SST-2 dev accuracy of fine-tuned runs, split by sentence length in pieces (issue 9).

A model pretrained on 32-token windows never trained its position embeddings beyond 32, and about
half of SST-2's dev sentences are longer than that; this shows where a recipe's gain lands.
Each run's predictions come from `bertcli predict` (its best checkpoint); lengths count the pieces
of the given tokenizer plus [CLS] and [SEP].

  PYTHONPATH=src .venv/bin/python experiments/sst2_by_length.py --tokenizer bench/out/pays4/tok \\
      bench/out/pays4/ft/2000-pretrained-lr0.001-mean-s{1,2,3}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="fine-tuned run folders")
    p.add_argument("--tokenizer", required=True, help="a bertcli tokenizer folder to count pieces with")
    p.add_argument("--dev", default=str(ROOT.parent / "shared/data/glue/sst2/dev.tsv"))
    p.add_argument("--train", default=str(ROOT.parent / "shared/data/glue/sst2/train.tsv"),
                   help="only its sentence lengths are printed, beside the dev set's")
    p.add_argument("--cut", type=int, default=32, help="short: at most this many pieces")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from bertcli.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    sentences, labels = read_tsv(args.dev)
    lengths = piece_counts(tokenizer, sentences)
    long = lengths > args.cut
    print(f"{len(sentences)} dev sentences: {int((~long).sum())} of at most {args.cut} pieces, "
          f"{int(long.sum())} longer")
    for name, counts in (("dev", lengths), ("train", piece_counts(tokenizer, read_tsv(args.train)[0]))):
        print(f"{name}: mean {counts.mean():.1f} pieces, {100 * (counts > args.cut).mean():.1f} % above {args.cut}, "
              f"{100 * (counts > 2 * args.cut).mean():.1f} % above {2 * args.cut}")
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "dev.txt"
        text.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        scores = {"all": [], "short": [], "long": []}
        for run in args.runs:
            done = subprocess.run([sys.executable, "-m", "bertcli", "predict", str(run), str(text), "-q"],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            predicted = [str(json.loads(line)["label"]) for line in done.stdout.splitlines()]
            right = np.array([a == b for a, b in zip(predicted, labels)])
            for name, part in (("all", np.ones_like(long)), ("short", ~long), ("long", long)):
                scores[name].append(float(right[part].mean()))
            print(f"{run}: all {right.mean():.3f}  short {right[~long].mean():.3f}  long {right[long].mean():.3f}")
    print("median: " + "  ".join(f"{name} {statistics.median(v):.3f}" for name, v in scores.items()))


def read_tsv(path: str) -> tuple[list[str], list[str]]:
    rows = [line.split("\t") for line in Path(path).read_text(encoding="utf-8").splitlines()[1:]]
    return [r[0] for r in rows], [r[-1].strip() for r in rows]


def piece_counts(tokenizer, sentences: list[str]) -> np.ndarray:
    """Pieces of each sentence with [CLS] and [SEP], as fine-tuning reads it."""
    return np.array([len(ids) + 2 for ids in tokenizer.encode_batch(sentences)])


if __name__ == "__main__":
    main()
