"""Input text -> documents of sentences -> token ids, held as flat arrays.

Two input formats:
  lines  one sentence per line, blank lines between documents: the format
         create_pretraining_data.py reads (every line is one "segment").
  raw    prose such as a Project Gutenberg book: the whole file is one document, paragraphs are
         separated by blank lines, hard-wrapped lines are joined, and sentences are found by
         data.sentences.
`auto` tells them apart by hard wrapping: in a book most lines run 40-100 characters, stop
mid-sentence and go on in the next line; in a sentence-per-line file almost none do.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from bertcli.data.arrays import offsets_from_lengths, range_indices
from bertcli.data.sentences import split_sentences

FORMATS = ("lines", "raw")

# A line counts as wrapped when it is this long, ends without sentence-final punctuation and the
# next line goes on; a file whose share of such lines reaches WRAPPED_SHARE is raw prose.
# (Measured: every Gutenberg book in ../shared/data/corpus is above 0.5; sentence-per-line text is
# near 0.)
WRAPPED_LENGTH = (40, 100)
WRAPPED_SHARE = 0.3
_SENTENCE_END = (".", "!", "?", '"', "'", "\u201d", "\u2019", ")", "]", ":")
_BLANK_LINES = re.compile(r"\n\s*\n")


def detect_format(text: str) -> str:
    lines = text.split("\n")
    nonempty = wrapped = 0
    for line, following in zip(lines, lines[1:] + [""]):
        line = line.rstrip()
        if not line:
            continue
        nonempty += 1
        if (WRAPPED_LENGTH[0] <= len(line) <= WRAPPED_LENGTH[1] and following.strip()
                and not line.endswith(_SENTENCE_END)):
            wrapped += 1
    return "raw" if wrapped >= WRAPPED_SHARE * nonempty else "lines"


def blocks(text: str) -> list[str]:
    """The blank-line-separated blocks of a text: documents (lines format) or paragraphs (raw)."""
    return [block for block in _BLANK_LINES.split(text) if block.strip()]


def group_blocks(all_blocks: list[str], max_chars: int) -> list[list[str]]:
    """Consecutive blocks in groups of about `max_chars` characters: units of parallel work."""
    groups, current, size = [], [], 0
    for block in all_blocks:
        current.append(block)
        size += len(block)
        if size >= max_chars:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups


def block_documents(group: list[str], fmt: str) -> list[list[str]]:
    """The documents (lists of sentences) in a group of blocks; raw text makes a single document."""
    if fmt == "lines":
        return [[line.strip() for line in block.split("\n") if line.strip()] for block in group]
    return [[sentence for paragraph in group for sentence in split_sentences(paragraph)]]


@dataclass
class Documents:
    """Tokenised documents as three flat arrays, so millions of sentences cost no Python objects.

    Sentence j is tokens[sentence_offsets[j]:sentence_offsets[j + 1]]; document d is sentences
    document_offsets[d] to document_offsets[d + 1]. Every sentence and document is non-empty.
    """

    tokens: np.ndarray
    sentence_offsets: np.ndarray
    document_offsets: np.ndarray

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_offsets) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def document_tokens(self) -> np.ndarray:
        """(num_documents,) token count of each document."""
        return np.diff(self.sentence_offsets[self.document_offsets])

    @classmethod
    def from_ids(cls, documents: list[list[list[int]]], dtype) -> "Documents":
        """From token ids per sentence per document; empty sentences and documents are dropped,
        as create_pretraining_data.py drops empty lines and documents."""
        kept = [[s for s in doc if s] for doc in documents]
        kept = [doc for doc in kept if doc]
        sentences = list(itertools.chain.from_iterable(kept))
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
        tokens = np.fromiter(itertools.chain.from_iterable(sentences), dtype=dtype, count=int(lengths.sum()))
        return cls(tokens, offsets_from_lengths(lengths),
                   offsets_from_lengths(np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))))

    @classmethod
    def concat(cls, parts: list["Documents"], dtype, as_one_document: bool = False) -> "Documents":
        """Parts end to end; `as_one_document` joins all their sentences into one document (the
        pieces of one raw file)."""
        tokens = np.concatenate([p.tokens for p in parts] or [np.zeros(0, dtype)])
        sentence_lengths = np.concatenate([np.diff(p.sentence_offsets) for p in parts] or [np.zeros(0, np.int64)])
        if as_one_document:
            document_lengths = np.array([len(sentence_lengths)] if len(sentence_lengths) else [], np.int64)
        else:
            document_lengths = np.concatenate([np.diff(p.document_offsets) for p in parts] or [np.zeros(0, np.int64)])
        return cls(tokens, offsets_from_lengths(sentence_lengths), offsets_from_lengths(document_lengths))

    def select(self, document_indices: np.ndarray) -> "Documents":
        """The given documents, in the given order."""
        document_indices = np.asarray(document_indices, dtype=np.int64)
        first, stop = self.document_offsets[document_indices], self.document_offsets[document_indices + 1]
        sentences = range_indices(first, stop)
        sentence_lengths = np.diff(self.sentence_offsets)[sentences]
        tokens = self.tokens[range_indices(self.sentence_offsets[first], self.sentence_offsets[stop])]
        return Documents(tokens, offsets_from_lengths(sentence_lengths), offsets_from_lengths(stop - first))
