"""CoNLL-style token classification files: one word per line with its tag in the last column,
a blank line between sentences, `-DOCSTART-` lines skipped (CoNLL-2003's format, IOB1 or IOB2).

A file without tags (one word per line) reads as unlabelled, for `predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bertcli.data.decoding import read_text_file
from bertcli.errors import UserError


@dataclass
class TaggedSentences:
    path: Path
    words: list[list[str]]
    tags: list[list[str]] | None
    lines: list[int]  # the file line of each sentence's first word


def read_conll(path: str | Path, need_labels: bool = True) -> TaggedSentences:
    path = Path(path)
    text = read_text_file(path, flag="--train/--dev/--data")
    words: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    current_words, current_tags, columns = [], [], None
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if current_words:
                words.append(current_words)
                tags.append(current_tags)
            current_words, current_tags = [], []
            continue
        if columns is None:
            columns = len(fields)
            if need_labels and columns < 2:
                raise UserError(f"{path}:{number}: one column ({line.strip()!r}); a CoNLL file needs the word "
                                f"first and its tag last on each line, e.g. 'Paris NNP B-NP B-LOC'")
        elif len(fields) != columns:
            raise UserError(f"{path}:{number}: {len(fields)} columns but earlier lines have {columns} "
                            f"({line.strip()!r}); fix that line (words with spaces are not allowed)")
        if columns >= 2 and not looks_like_tag(fields[-1]):
            raise UserError(f"{path}:{number}: tag {fields[-1]!r} is not O or B-/I-/E-/S-TYPE; the last column "
                            f"must hold the IOB tag")
        if not current_words:
            lines.append(number)
        current_words.append(fields[0])
        current_tags.append(fields[-1] if columns >= 2 else "")
    if current_words:
        words.append(current_words)
        tags.append(current_tags)
    if not words:
        raise UserError(f"{path}: has no sentences; a CoNLL file has one word and tag per line")
    return TaggedSentences(path, words, tags if columns and columns >= 2 else None, lines)


def looks_like_tag(tag: str) -> bool:
    return tag == "O" or (len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-")


def tag_scheme(tags: list[list[str]]) -> str:
    """iob2 when every entity opens with B-, iob1 when an I- opens one (CoNLL-2003's original files)."""
    for sentence in tags:
        previous = "O"
        for tag in sentence:
            if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
                return "iob1"
            previous = tag
    return "iob2"
