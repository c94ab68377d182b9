"""Sentence pairs (A, B) for next sentence prediction, as in create_pretraining_data.py.

A document is cut into chunks of whole sentences ("segments") about `target` tokens long. The
first `a_end` segments of a chunk are A. B is the rest of the chunk ("is next"), or, with
probability `random_next_prob` and always when the chunk is a single segment, a run of segments
from a random other document ("random next"), in which case the chunk's unused segments are put
back to start the next chunk. Both A and B are contiguous token ranges, so a pair is six integers.

Balance: Google's rule makes every single-segment chunk (a document's last sentence, a sentence
that fills the target alone) a random pair on top of the random_next_prob of the others, which
tips the labels (53 % random on WikiText-2, more on short documents). Here each document keeps
its random pairs at random_next_prob of its chunks so far (an NspBalance): a chunk that has a
choice is random when a random pair is owed, "is next" when there is a surplus, and random with the
owed fraction in between. Which chunk gets which label stays random, and a document's pairs still
depend on nothing but its own generator.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Callable, NamedTuple

import numpy as np

from bertcli.data.documents import Documents


class Pair(NamedTuple):
    a_start: int  # token range of A in Documents.tokens
    a_stop: int
    b_start: int  # token range of B
    b_stop: int
    b_document: int  # the document B comes from (A's own unless is_random)
    is_random: bool


class NspBalance:
    """Random pairs owed: random_next_prob for every chunk made, less one for every random pair.
    (The rule itself is inlined in document_pairs' loop: a chunk is random when it has a single
    segment, when a whole pair is owed, or with the owed fraction's probability.)"""

    def __init__(self, random_next_prob: float):
        self.p, self.owed = random_next_prob, 0.0


def document_pairs(docs: Documents, d: int, rng: np.random.Generator, max_num_tokens: int,
                   short_seq_prob: float, random_next_prob: float, balance: NspBalance | None = None) -> list[tuple]:
    """The NSP pairs of document `d` (tuples of Pair's fields); B of a random pair comes from
    another document of `docs`.
    `balance` may carry the label balance over several documents (tests); by default each
    document balances its own."""
    balance = balance or NspBalance(random_next_prob)
    # This loop runs once per example of the corpus, so it is written for CPython: plain ints and
    # lists (the block's offsets as lists, sentences numbered across the block), uniforms drawn in
    # blocks, the label balance, the target draw and B's choice inlined (a function call costs as
    # much as a few lines of the loop), plain tuples for the pairs.
    offsets, documents = docs.offset_lists
    full_chunk_ends = docs.chunk_ends(max_num_tokens)
    first, end = documents[d], documents[d + 1]
    u = uniforms(rng, 4 * (end - first) + 8)
    pairs = []
    append = pairs.append
    p, owed = balance.p, balance.owed
    num_documents, span = docs.num_documents, max_num_tokens - 1
    # Mostly fill the sequence; sometimes (short_seq_prob, 10 % in BERT) aim shorter so that the model
    # also sees the short inputs it will meet when fine-tuning. Google draws the target once per
    # document, which makes all of a book's examples short 10 % of the time; drawn per chunk, every
    # document gets the intended 10 % of short sequences (BERT paper, appendix A.2).
    target = 2 + int(u() * span) if u() < short_seq_prob else max_num_tokens
    chunk_start = first
    while chunk_start < end:
        # Google adds one sentence at a time until the chunk reaches the target or the document
        # ends: the sentence where that happens is looked up (full targets, Documents.chunk_ends) or
        # found by bisection over the offsets (short ones), without a Python step per sentence.
        if target == max_num_tokens:
            i = full_chunk_ends[chunk_start]
        else:
            i = bisect_left(offsets, offsets[chunk_start] + target, chunk_start + 1, end + 1)
            i = (end if i > end else i) - 1
        segments = i + 1 - chunk_start
        # randint(1, segments - 1) in Google's code: A takes at least one segment, and leaves
        # B at least one when the chunk has two or more.
        a_end = chunk_start + (1 if segments == 1 else 1 + int(u() * (segments - 1)))
        a_start, a_stop = offsets[chunk_start], offsets[a_end]
        owed += p  # NspBalance.is_random
        if segments == 1 or owed >= 1 or (owed > 0 and u() < owed):
            owed -= 1
            # B: uniformly one of the other documents (Google retries up to 10 times and may end
            # with `d` itself; drawing from n - 1 and skipping `d` never does; a block holding one
            # document has no other, and B then comes from `d`, as Google's retries end when the
            # corpus is one document) ...
            if num_documents < 2:
                b_document = d
            else:
                b_document = int(u() * (num_documents - 1))
                b_document += b_document >= d
            # ... its sentences from a random start until they reach the target's rest or the
            # document's end, always at least one
            b_first, b_end = documents[b_document], documents[b_document + 1]
            start = b_first + int(u() * (b_end - b_first))
            b_start = offsets[start]
            stop = bisect_left(offsets, b_start + target - (a_stop - a_start), start + 1, b_end + 1)
            b_stop = offsets[stop if stop < b_end else b_end]
            i = a_end - 1  # put the unused segments back: they start the next chunk
            is_random = True
        else:
            b_document, b_start, b_stop, is_random = d, a_stop, offsets[i + 1], False
        if a_stop - a_start + b_stop - b_start > max_num_tokens:
            a_start, a_stop, b_start, b_stop = _truncate(a_start, a_stop, b_start, b_stop, max_num_tokens, u)
        append((a_start, a_stop, b_start, b_stop, b_document, is_random))
        chunk_start = i + 1
        target = 2 + int(u() * span) if u() < short_seq_prob else max_num_tokens
    balance.owed = owed
    return pairs


def uniforms(rng: np.random.Generator, block: int) -> Callable[[], float]:
    """A function returning uniform [0, 1) draws from `rng`, fetched `block` at a time. (A
    generator's __next__: the pair loop calls it about once per chunk and per pair, and a method
    call would cost several times more.)"""

    def stream():
        while True:
            values = rng.random(block)
            # made into Python floats as needed: the pair loop draws a block generous enough for
            # any document and uses a fraction of it
            for start in range(0, block, 256):
                yield from values[start:start + 256].tolist()

    return stream().__next__


def truncate_pair(a_start: int, a_stop: int, b_start: int, b_stop: int, max_num_tokens: int,
                  rng) -> tuple[int, int, int, int]:
    """Google's truncate_seq_pair: drop one token at a time from the longer side (B on a tie),
    from its front or its back with equal probability, until the pair fits.

    The sides' final lengths follow from the rule alone, and each side's dropped tokens split
    between front and back as a Binomial(k, 1/2): the same distribution, without the loop.
    """
    if a_stop - a_start + b_stop - b_start <= max_num_tokens:
        return a_start, a_stop, b_start, b_stop
    u = uniforms(rng, 8) if isinstance(rng, np.random.Generator) else rng
    return _truncate(a_start, a_stop, b_start, b_stop, max_num_tokens, u)


def _truncate(a_start: int, a_stop: int, b_start: int, b_stop: int, max_num_tokens: int,
              u: Callable[[], float]) -> tuple[int, int, int, int]:
    # truncate_pair for a pair that is too long; the pair loop calls it for most pairs, so the
    # coins of up to 53 drops (nearly always) are counted inline
    la, lb = a_stop - a_start, b_stop - b_start
    keep_a = (max_num_tokens + 1) // 2
    if keep_a < max_num_tokens - lb:
        keep_a = max_num_tokens - lb
    if keep_a > la:
        keep_a = la
    drop_a, drop_b = la - keep_a, lb - (max_num_tokens - keep_a)
    front_a = front_b = 0  # (no coin for a side that keeps all its tokens)
    if drop_a:
        front_a = (int(u() * _TWO_53) & ((1 << drop_a) - 1)).bit_count() if drop_a <= 53 else _fair_coins(u, drop_a)
    if drop_b:
        front_b = (int(u() * _TWO_53) & ((1 << drop_b) - 1)).bit_count() if drop_b <= 53 else _fair_coins(u, drop_b)
    return a_start + front_a, a_stop - (drop_a - front_a), b_start + front_b, b_stop - (drop_b - front_b)


_TWO_53 = 9007199254740992.0  # a uniform double carries 53 random bits


def _fair_coins(u: Callable[[], float], k: int) -> int:
    """Heads among k fair coins, Binomial(k, 1/2): the set bits among k of a uniform's 53 random bits."""
    heads = 0
    while k > 0:
        take = min(k, 53)
        heads += (int(u() * _TWO_53) & ((1 << take) - 1)).bit_count()
        k -= take
    return heads
