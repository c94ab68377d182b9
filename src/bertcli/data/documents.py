"""Tokenised documents of sentences, held as flat arrays (see data.inputs for reading text)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from bertcli.data.arrays import offsets_from_lengths, range_indices


class OffsetLists(NamedTuple):
    sentences: list[int]
    documents: list[int]


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

    @cached_property
    def offset_lists(self) -> "OffsetLists":
        """The offsets as Python lists, made once: the pair loop looks up single offsets by the
        hundred thousand, and a Python list answers those many times faster than numpy."""
        return OffsetLists(self.sentence_offsets.tolist(), self.document_offsets.tolist())

    def chunk_ends(self, target: int) -> list[int]:
        """For every sentence j, the last sentence of the chunk that starts at j and takes whole
        sentences until it holds `target` tokens or its document ends (the pair loop's chunk for
        a full-length target), as a list; made once per target."""
        cache = self.__dict__.setdefault("_chunk_ends", {})
        if target not in cache:
            starts = self.sentence_offsets[:-1]
            document_ends = np.repeat(self.document_offsets[1:], np.diff(self.document_offsets))
            reached = np.searchsorted(self.sentence_offsets, starts + target)
            cache[target] = (np.minimum(reached, document_ends) - 1).tolist()
        return cache[target]

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
    def from_lengths(cls, tokens: np.ndarray, sentence_lengths: np.ndarray, document_sentences: np.ndarray) -> "Documents":
        """From all sentences' tokens end to end, each sentence's length and each document's count
        of sentences; empty sentences and documents are dropped, as in from_ids."""
        kept = sentence_lengths > 0
        document_of = np.repeat(np.arange(len(document_sentences)), document_sentences)
        per_document = np.bincount(document_of[kept], minlength=len(document_sentences))
        return cls(tokens, offsets_from_lengths(sentence_lengths[kept]), offsets_from_lengths(per_document[per_document > 0]))

    @classmethod
    def concat(cls, parts: list["Documents"], dtype, continues: list[bool] | None = None) -> "Documents":
        """Parts end to end; where continues[i], part i's first document goes on part i - 1's last
        (the pieces of one long document tokenised apart)."""
        tokens = np.concatenate([p.tokens for p in parts] or [np.zeros(0, dtype)])
        sentence_lengths = np.concatenate([np.diff(p.sentence_offsets) for p in parts] or [np.zeros(0, np.int64)])
        document_lengths: list[np.ndarray] = []
        for i, part in enumerate(parts):
            lengths = np.diff(part.document_offsets)
            if continues and continues[i] and len(lengths) and document_lengths and len(document_lengths[-1]):
                document_lengths[-1] = document_lengths[-1].copy()
                document_lengths[-1][-1] += lengths[0]
                lengths = lengths[1:]
            if len(lengths):
                document_lengths.append(lengths)
        lengths = np.concatenate(document_lengths) if document_lengths else np.zeros(0, np.int64)
        return cls(tokens, offsets_from_lengths(sentence_lengths), offsets_from_lengths(lengths))

    def select(self, document_indices: np.ndarray) -> "Documents":
        """The given documents, in the given order."""
        document_indices = np.asarray(document_indices, dtype=np.int64)
        first, stop = self.document_offsets[document_indices], self.document_offsets[document_indices + 1]
        sentences = range_indices(first, stop)
        sentence_lengths = np.diff(self.sentence_offsets)[sentences]
        tokens = self.tokens[range_indices(self.sentence_offsets[first], self.sentence_offsets[stop])]
        return Documents(tokens, offsets_from_lengths(sentence_lengths), offsets_from_lengths(stop - first))
