"""Sentence splitters compared: errors on the hand-labelled sample, and speed.

    BERTCLI_SHARED_DATA=../shared/data PYTHONPATH=src:bench python bench/sentences.py

Needs the candidate libraries importable (pip install pysbd syntok sentencex blingfire); a missing
one is left out. Errors are counted against bench/sentence_gold.json (see bench/sentence_sample.py):
a false split is a boundary the splitter made that is not in the labels, a miss is a labelled one
it did not make. Speed is characters per second over the paragraphs of three whole books, each
splitter run in turn three times (A, B, C, A, B, C, ...), the median quoted.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from sentence_sample import DATA, paragraphs, sample

from bertcli.data.sentences import split_sentences

GOLD = Path(__file__).with_name("sentence_gold.json")
SPEED_BOOKS = ("gutenberg/11-0.txt", "gutenberg/pg1661.txt", "gutenberg/pg1342.txt")


def splitters() -> dict:
    found = {"bertcli rules (data/sentences.py)": split_sentences}
    try:
        import blingfire

        found["blingfire 0.1.8"] = lambda t: blingfire.text_to_sentences(t).split("\n")
    except ImportError:
        pass
    try:
        import pysbd

        segmenter = pysbd.Segmenter(language="en", clean=False)
        found["pysbd 0.3.4"] = segmenter.segment
    except ImportError:
        pass
    try:
        import sentencex

        found["sentencex 1.0.32"] = lambda t: list(sentencex.segment("en", t))
    except ImportError:
        pass
    try:
        import syntok.segmenter as syntok

        found["syntok 1.4.4"] = lambda t: ["".join(tok.spacing + tok.value for tok in s)
                                           for p in syntok.process(t) for s in p]
    except ImportError:
        pass
    return found


def starts(text: str, sentences: list[str]) -> set[int]:
    """Where each sentence begins in `text` (0 left out)."""
    out, position = set(), 0
    for sentence in sentences:
        sentence = sentence.strip()
        if not sentence:
            continue
        at = text.find(sentence[:20], position)
        at = position if at < 0 else at
        out.add(at)
        position = at + 1
    return out - {0}


def main() -> None:
    gold = json.loads(GOLD.read_text())["paragraphs"]
    texts = sample()
    assert [(g["file"], g["paragraph"]) for g in gold] == [(f, i) for f, i, _ in texts], "sample changed"
    found = splitters()
    labelled = sum(len(g["starts"]) for g in gold)
    speed_text = [t for book in SPEED_BOOKS for t in paragraphs(DATA / book)]
    chars = sum(map(len, speed_text))
    times: dict[str, list[float]] = {name: [] for name in found}
    for _ in range(3):
        for name, split in found.items():
            started = time.perf_counter()
            for text in speed_text:
                split(text)
            times[name].append(time.perf_counter() - started)
    print(f"{len(gold)} paragraphs, {labelled} labelled boundaries; speed over {chars / 1e6:.2f} M characters")
    print(f"{'splitter':36} {'false splits':>12} {'misses':>7} {'errors':>7} {'M chars/s':>10}")
    for name, split in found.items():
        false = missed = 0
        for g, (_, _, text) in zip(gold, texts):
            made, truth = starts(text, split(text)), set(g["starts"])
            false += len(made - truth)
            missed += len(truth - made)
        rate = chars / statistics.median(times[name]) / 1e6
        print(f"{name:36} {false:12d} {missed:7d} {false + missed:7d} {rate:10.2f}")


if __name__ == "__main__":
    main()
