"""SQuAD v1.1 JSON: questions over paragraphs, answers as (text, character offset).

Each context is split into words (data/words.py), each word into pieces; long contexts become
windows of at most max_seq_len tokens that overlap by moving doc_stride tokens at a time
(Google's run_squad.py). Answers are stored as word spans and predicted spans map back to
exact character offsets of the original context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bertcli.data.decoding import read_text_file
from bertcli.tasks.words import split_words, word_pieces
from bertcli.errors import UserError
from bertcli.tokenizer import Tokenizer


@dataclass
class Question:
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, character start)


@dataclass
class Questions:
    path: Path
    items: list[Question]


def read_squad(path: str | Path, need_labels: bool = True) -> Questions:
    path = Path(path)
    text = read_text_file(path, flag="--train/--dev/--data")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); --task qa reads SQuAD v1.1 JSON")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UserError(f"{path}: not SQuAD JSON (expected {{\"data\": [{{\"paragraphs\": ...}}]}})")
    items = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            if not isinstance(context, str):
                raise UserError(f"{path}: a paragraph without a \"context\" string (article "
                                f"{article.get('title', '?')!r}); every paragraph needs one")
            for qa in paragraph.get("qas", []):
                qid = str(qa.get("id", len(items)))
                answers = [(a.get("text", ""), a.get("answer_start", -1)) for a in qa.get("answers", [])]
                for answer, start in answers:
                    if not isinstance(start, int) or context[start:start + len(answer)] != answer:
                        found = context[start:start + len(answer)] if isinstance(start, int) else None
                        raise UserError(f"{path}:{_line_of(text, qid)}: question {qid}: answer {answer!r} at "
                                        f"answer_start {start} does not match the context there ({found!r}); "
                                        f"fix answer_start")
                if need_labels and not answers:
                    raise UserError(f"{path}:{_line_of(text, qid)}: question {qid} has no answers; SQuAD v1.1 "
                                    f"training and evaluation need at least one per question")
                items.append(Question(qid, str(qa.get("question", "")), context, answers))
    if not items:
        raise UserError(f"{path}: has no questions; SQuAD JSON holds them under data[].paragraphs[].qas")
    return Questions(path, items)


def _line_of(text: str, qid: str) -> int:
    at = text.find(json.dumps(qid))
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


@dataclass
class Window:
    """One model input: a question with a slice of its context."""

    question: int  # index into Questions.items
    input_ids: np.ndarray
    token_type_ids: np.ndarray
    offsets: np.ndarray  # (T, 2) character span of each token's word; -1 -1 outside the context
    max_context: np.ndarray  # (T,) bool: this window gives the token its most context (run_squad.py)
    span: tuple[int, int]  # answer start and end token, (0, 0) when the answer is not inside


def window_starts(num_pieces: int, room: int, doc_stride: int) -> list[int]:
    """Where each window's slice of the context begins (run_squad.py: step by doc_stride until the
    end of the context is inside a window)."""
    starts, start = [], 0
    while True:
        starts.append(start)
        if start + room >= num_pieces:
            return starts
        start += min(room, doc_stride)


def make_windows(questions: list[Question], tokenizer: Tokenizer, max_seq_len: int, doc_stride: int,
                 max_query_len: int) -> list[Window]:
    windows = []
    for q_index, q in enumerate(questions):
        query = tokenizer.encode(q.question)[:max_query_len]
        words = split_words(q.context)
        pieces = word_pieces(tokenizer, [w for w, _, _ in words])
        piece_word = np.asarray([w for w, ids in enumerate(pieces) for _ in ids], dtype=np.int64)
        piece_ids = np.asarray([i for ids in pieces for i in ids], dtype=np.int64)
        word_spans = np.asarray([(a, b) for _, a, b in words], dtype=np.int64).reshape(-1, 2)
        answer = _answer_pieces(q, words, pieces) if q.answers else None
        room = max(max_seq_len - len(query) - 3, 1)
        starts = window_starts(len(piece_ids), room, doc_stride)
        # Each piece's best window gives it the most context on its shorter side; ties go to the
        # earlier window (run_squad.py's _check_is_max_context).
        best = np.full(len(piece_ids), -1, dtype=np.int64)
        best_score = np.full(len(piece_ids), -1, dtype=np.int64)
        for w, start in enumerate(starts):
            end = min(start + room, len(piece_ids))
            positions = np.arange(start, end)
            score = np.minimum(positions - start, end - 1 - positions)
            better = score > best_score[start:end]
            best[start:end][better], best_score[start:end][better] = w, score[better]
        head = len(query) + 2
        for w, start in enumerate(starts):
            end = min(start + room, len(piece_ids))
            n = end - start
            ids = np.concatenate([[tokenizer.cls_id], query, [tokenizer.sep_id], piece_ids[start:end],
                                  [tokenizer.sep_id]]).astype(np.int64)
            types = np.zeros(len(ids), dtype=np.int64)
            types[head:] = 1
            offsets = np.full((len(ids), 2), -1, dtype=np.int64)
            offsets[head:head + n] = word_spans[piece_word[start:end]]
            max_context = np.zeros(len(ids), dtype=bool)
            max_context[head:head + n] = best[start:end] == w
            # A window without the whole answer trains towards [CLS] (run_squad.py, SQuAD v1.1).
            span = (0, 0)
            if answer is not None and start <= answer[0] and answer[1] < end:
                span = (answer[0] - start + head, answer[1] - start + head)
            windows.append(Window(q_index, ids, types, offsets, max_context, span))
    return windows


def _answer_pieces(q: Question, words, pieces) -> tuple[int, int]:
    """First and last piece of the (first) gold answer, through the words it covers."""
    text, start = q.answers[0]
    end = start + len(text)
    covered = [w for w, (_, a, b) in enumerate(words) if a < end and b > start]
    if not covered:
        raise UserError(f"question {q.id}: answer {text!r} covers no word of the context; fix the answer")
    first_piece = sum(len(p) for p in pieces[:covered[0]])
    last_piece = sum(len(p) for p in pieces[:covered[-1] + 1]) - 1
    return first_piece, last_piece
