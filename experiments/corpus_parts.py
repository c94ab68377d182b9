"""build-corpus's two hot loops, this tree against another revision's, on the same synthetic input.

    PYTHONPATH=src .venv/bin/python experiments/corpus_parts.py --against 9d442db [--rounds 3]

The pair loop (data.pairs.document_pairs over 26 book-length documents, two dupe copies) and the
static masking (data.batch_masking.mask_rows over 20,000 examples of up to 128 tokens) of the
working tree and of `--against` (its two modules read with `git show`), interleaved, checked to
give identical results; prints each round and the medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bertcli.data import batch_masking, pairs
from bertcli.data.documents import Documents
from bertcli.data.masking import Masker

ROOT = Path(__file__).resolve().parents[1]


def module_at(revision: str, path: str, name: str, folder: Path):
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    file = folder / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def book_documents(rng) -> Documents:
    docs, start = [], 0
    for _ in range(26):
        sentences = []
        for _ in range(int(rng.integers(3000, 12000))):
            length = int(rng.integers(3, 50))
            sentences.append(list(range(start % 7000 + 5, start % 7000 + 5 + length)))
            start += length
        docs.append(sentences)
    return Documents.from_ids(docs, np.int32)


def run_pairs(module, docs: Documents) -> list:
    found = []
    for copy in range(2):
        for d in range(docs.num_documents):
            found += module.document_pairs(docs, d, np.random.default_rng([copy, d]), 125, 0.1, 0.5)
    return [tuple(map(int, p)) for p in found]


def run_masks(module, ids, lengths, masker):
    groups = [(np.random.default_rng([7, g]), 100) for g in range(len(lengths) // 100)]
    return module.mask_rows(ids, lengths, masker, groups)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", required=True, help="a git revision")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    docs = book_documents(rng)
    lengths = np.where(rng.random(20000) < 0.1, rng.integers(5, 128, 20000), 128).astype(np.int32)
    ids = rng.integers(5, 8000, int(lengths.sum())).astype(np.uint16)
    masker = Masker(8000, frozenset(range(5)), 4, unk_id=1)
    with tempfile.TemporaryDirectory() as folder:
        old_pairs = module_at(args.against, "src/bertcli/data/pairs.py", "old_pairs", Path(folder))
        old_masking = module_at(args.against, "src/bertcli/data/batch_masking.py", "old_batch_masking", Path(folder))
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            results = {}
            for name, call in [("pairs, " + args.against, lambda: run_pairs(old_pairs, docs)),
                               ("pairs, working tree", lambda: run_pairs(pairs, docs)),
                               ("masks, " + args.against, lambda: run_masks(old_masking, ids, lengths, masker)),
                               ("masks, working tree", lambda: run_masks(batch_masking, ids, lengths, masker))]:
                started = time.perf_counter()
                results[name] = call()
                times.setdefault(name, []).append(time.perf_counter() - started)
                print(f"  {name}: {times[name][-1]:.3f} s", flush=True)
            assert results["pairs, " + args.against] == results["pairs, working tree"], "pairs differ"
            assert all(np.array_equal(a, b) for a, b in zip(results["masks, " + args.against],
                                                            results["masks, working tree"])), "masks differ"
    count = len(run_pairs(pairs, docs))
    print(f"identical results; {count:,} pairs, {int(lengths.sum()):,} tokens masked; medians:")
    for name, values in times.items():
        per = f" ({statistics.median(values) / count * 1e6:.1f} us a pair)" if name.startswith("pairs") else ""
        print(f"  {name}: {statistics.median(values):.3f} s{per}")


if __name__ == "__main__":
    sys.exit(main())
