"""What the shard check (issue 20) adds to the start of a pretraining run.

    PYTHONPATH=src .venv/bin/python bench/verify_corpus.py CORPUS [--rounds 3]

Times, interleaved, a full verification of CORPUS's train split (every shard file hashed and its
ids checked: what the first run on a corpus, or `verify_corpus: always`, pays) and a verification
whose record says the files are unchanged (what a --resume or second run pays), and prints the
medians beside the corpus's size. The page cache is warm after the first round, as it is for a
run started right after its build; a cold read adds the disk's read time on top.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bertcli.data.shard_integrity import verify_split  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("corpus")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    corpus = Path(args.corpus)
    os.environ["BERTCLI_CACHE"] = tempfile.mkdtemp(prefix="bertcli-verify-")
    manifest = json.loads((corpus / "manifest.json").read_text())
    vocab = manifest["vocab_size"]
    shards = manifest["splits"]["train"]["shards"]
    size = sum((corpus / s["path"] / name).stat().st_size for s in shards for name in s["sha256"])
    examples = sum(s["examples"] for s in shards)
    full, recorded = [], []
    for _ in range(args.rounds):
        full.append(verify_split(corpus, "train", vocab, mode="always")["seconds"])
        again = verify_split(corpus, "train", vocab, mode="once")
        assert again["files"] == 0, again
        recorded.append(again["seconds"])
    print(f"corpus {corpus}: {len(shards)} shards, {examples:,} examples, {size / 1e6:.1f} MB")
    print(f"full check (first run, or verify_corpus=always): median {statistics.median(full):.3f} s "
          f"({', '.join(f'{t:.3f}' for t in full)}); {size / 1e6 / statistics.median(full):.0f} MB/s")
    print(f"recorded (resume, second run): median {statistics.median(recorded) * 1000:.1f} ms "
          f"({', '.join(f'{t * 1000:.1f}' for t in recorded)})")


if __name__ == "__main__":
    main()
