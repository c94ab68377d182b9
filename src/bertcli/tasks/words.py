"""Text split into words with their character offsets: the unit NER labels and QA answers live on.

Whitespace separates words and punctuation stands alone (as BERT's BasicTokenizer splits), so an
answer "Denver" inside "Denver," starts and ends on a word boundary, and every prediction maps
back to an exact character span of the original text, whatever the subword tokenizer.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from bertcli.tokenizer import Tokenizer

_WORD = re.compile(r"[^\W_]+|\S", re.UNICODE)  # runs of letters/digits, or one other visible character


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) character spans of `text`, in order."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def is_punctuation(word: str) -> bool:
    return len(word) == 1 and unicodedata.category(word)[0] in "PS"


def word_pieces(tokenizer: Tokenizer, words: list[str]) -> list[list[int]]:
    """Each word's token ids; a word the tokenizer drops entirely (a stray control character) gets
    [UNK], so that every word keeps a first piece to carry its label."""
    pieces = tokenizer.encode_batch(words) if words else []
    return [ids if ids else [tokenizer.unk_id] for ids in pieces]


def flatten_pieces(pieces: list[list[int]], limit: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Concatenated piece ids (at most `limit`), the index of each word's first piece (-1 where the
    word fell past the limit), and how many words fit."""
    ids, firsts, fitted = [], np.full(len(pieces), -1, dtype=np.int64), 0
    for w, word in enumerate(pieces):
        if len(ids) + len(word) > limit:
            break
        firsts[w] = len(ids)
        ids.extend(word)
        fitted = w + 1
    return np.asarray(ids, dtype=np.int64), firsts, fitted
