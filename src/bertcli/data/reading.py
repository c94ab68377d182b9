"""Inputs -> tokenised Documents: read (data.inputs), split into sentences and tokenise in parallel.

The main process reads the inputs as a stream and cuts it into tasks of about `piece_chars`
characters; workers split and tokenise them; results come back in input order (Pool.imap), so the
Documents are the same whatever the number of workers.
"""

from __future__ import annotations

import collections
import multiprocessing
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from bertcli.data.documents import Documents
from bertcli.data.inputs import InputReport, Piece, ReadSettings, needs_splitting, read_documents
from bertcli.data.sentences import split_sentences
from bertcli.tokenizer import load_tokenizer

_state: dict = {}


@dataclass
class Tokenised:
    """One task's documents; `continues`: its first document goes on the previous task's last."""

    documents: Documents
    continues: bool
    input_index: int
    chars: int


def tokenised_inputs(paths: list[str], settings: ReadSettings, tokenizer_folder: str, dtype: np.dtype,
                     workers: int, piece_chars: int, reports: list[InputReport],
                     progress: Callable[[int, int], None] | None = None) -> Iterator[Tokenised]:
    """Tokenised pieces of every input in order; `reports` receives one InputReport per input (each
    complete once its last piece has been yielded)."""
    tasks = _tasks(paths, settings, piece_chars, reports)
    yield from parallel_map(_tokenize, tasks, workers, _init, (tokenizer_folder, dtype))


def _tasks(paths: list[str], settings: ReadSettings, piece_chars: int,
           reports: list[InputReport]) -> Iterator[tuple]:
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


def _init(tokenizer_folder: str, dtype: np.dtype) -> None:
    _state["tokenizer"] = load_tokenizer(tokenizer_folder)
    _state["dtype"] = dtype


def _tokenize(task: tuple) -> Tokenised:
    pieces, split, index, chars = task
    documents: list[list[str]] = []
    for piece in pieces:
        sentences = [s for text in piece.texts for s in split_sentences(text)] if split else piece.texts
        if piece.continues and documents:
            documents[-1].extend(sentences)
        else:
            documents.append(list(sentences))
    ids = iter(_state["tokenizer"].encode_batch([s for doc in documents for s in doc]))
    per_document = [[next(ids) for _ in doc] for doc in documents]
    # the first document only continues another if it kept any tokens (empty ones are dropped)
    continues = pieces[0].continues and any(per_document[0])
    return Tokenised(Documents.from_ids(per_document, _state["dtype"]), continues, index, chars)


def parallel_map(function: Callable, tasks, workers: int, initializer: Callable, initargs: tuple) -> Iterator:
    """function(task) for each task, in order, in `workers` processes (or in this one).

    Tasks are drawn from the iterator in this process and at most 2 * workers are in flight, so a
    streamed input is never read far ahead of the results (Pool.imap would read it all at once).
    """
    if workers == 1:
        initializer(*initargs)
        try:
            yield from map(function, tasks)
        finally:
            _state.clear()
        return
    with multiprocessing.get_context().Pool(workers, initializer, initargs) as pool:
        pending: collections.deque = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(function, (task,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
