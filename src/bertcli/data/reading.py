"""Inputs -> tokenised Documents: read (data.inputs), split into sentences and tokenise in parallel.

The main process reads the inputs as a stream and cuts it into jobs of about `piece_chars`
characters; workers (data.workers) split and tokenise them; results come back in input order, so
the Documents are the same whatever the number of workers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from bertcli.data.documents import Documents
from bertcli.data.inputs import InputReport, Piece, ReadSettings, needs_splitting, read_documents
from bertcli.data.sentences import split_sentences
from bertcli.data.workers import state
from bertcli.tokenizer import load_tokenizer

@dataclass
class Tokenised:
    """One job's documents; `continues`: its first document goes on the previous job's last."""

    documents: Documents
    continues: bool
    input_index: int
    chars: int


def text_jobs(paths: list[str], settings: ReadSettings, piece_chars: int,
               reports: list[InputReport]) -> Iterator[tuple]:
    """The inputs as tokenisation jobs of about `piece_chars` characters, in order; `reports`
    receives one InputReport per input (complete once its last job has been drawn)."""
    for index, path in enumerate(paths):
        report = InputReport(path="<stdin>" if path == "-" else path)
        reports.append(report)
        group: list[Piece] = []
        size = 0
        for piece in read_documents(path, settings, report):
            group.append(piece)
            size += sum(map(len, piece.texts))
            if size >= piece_chars:
                yield group, needs_splitting(report.format), index, size
                group, size = [], 0
        if group:
            yield group, needs_splitting(report.format), index, size


def init_tokenize(tokenizer_folder: str, dtype: np.dtype) -> None:
    state["tokenizer"] = load_tokenizer(tokenizer_folder)
    state["dtype"] = dtype


ENCODE_BATCH = 4096  # sentences per call of the tokenizer


def tokenize_job(job: tuple) -> Tokenised:
    """Split a job's texts into sentences (when its format needs it) and tokenise them."""
    pieces, split, index, chars = job
    documents: list[list[str]] = []
    for piece in pieces:
        sentences = [s for text in piece.texts for s in split_sentences(text)] if split else piece.texts
        if piece.continues and documents:
            documents[-1].extend(sentences)
        else:
            documents.append(list(sentences))
    sentences = [s for doc in documents for s in doc]
    # Encoded a batch at a time and made into arrays at once: the tokenizer's Python lists of ints
    # cost some 40 bytes a token, and a whole job's (a megabyte of text) left each worker's heap
    # larger after every job, which the 10x larger input's build showed as growth.
    lengths, tokens = [], []
    for start in range(0, len(sentences), ENCODE_BATCH):
        ids = state["tokenizer"].encode_batch(sentences[start:start + ENCODE_BATCH])
        lengths.append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        tokens.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=state["dtype"], count=int(lengths[-1].sum())))
    sentence_lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    docs = Documents.from_lengths(np.concatenate(tokens) if tokens else np.zeros(0, state["dtype"]),
                                  sentence_lengths, np.array([len(doc) for doc in documents], dtype=np.int64))
    # the first document only continues another if it kept any tokens (empty ones are dropped)
    continues = pieces[0].continues and bool(documents) and sentence_lengths[:len(documents[0])].any()
    return Tokenised(docs, bool(continues), index, chars)
