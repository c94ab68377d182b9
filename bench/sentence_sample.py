"""The hand-labelled sentence-splitting sample: which paragraphs of ../shared/data it uses.

The text stays in ../shared (its licences vary); bench/sentence_gold.json holds only where each
paragraph is (file, paragraph number) and the character offsets where its sentences start, in the
paragraph with its whitespace collapsed (data.sentences.unwrap).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from bertcli.data.inputs import InputReport, ReadSettings, read_documents
from bertcli.data.sentences import unwrap

# ../shared/data beside the repository, or where BERTCLI_SHARED_DATA points (a git worktree elsewhere)
DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "corpus"
BOOKS = ("11-0.txt", "pg1342.txt", "2600-0.txt", "pg1661.txt", "pg345.txt", "76-0.txt", "2701-0.txt")
PER_BOOK, WIKI = 7, 12


def paragraphs(path: Path) -> list[str]:
    report = InputReport(str(path))
    return [unwrap(t) for piece in read_documents(str(path), ReadSettings(), report) for t in piece.texts]


def sample() -> list[tuple[str, int, str]]:
    """(file relative to DATA, paragraph number, text) of every sampled paragraph."""
    rng = random.Random(7)
    chosen = []
    sources = [(f"gutenberg/{name}", PER_BOOK) for name in BOOKS] + [("wikitext2/valid.txt", WIKI)]
    for relative, count in sources:
        texts = paragraphs(DATA / relative)
        # paragraphs with at least two sentence-like stops: a one-sentence paragraph tests little
        candidates = [i for i, t in enumerate(texts) if 120 <= len(t) <= 900 and sum(t.count(c) for c in ".!?") >= 2]
        for i in sorted(rng.sample(candidates, count)):
            chosen.append((relative, i, texts[i]))
    return chosen
