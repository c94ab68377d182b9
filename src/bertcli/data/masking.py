"""Masked-LM predictions for one example, as create_masked_lm_predictions in create_pretraining_data.py."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# What happened at a predicted position (BERT paper, section 3.1: 80 % / 10 % / 10 %).
MASKED, KEPT, RANDOM = 0, 1, 2
REPLACEMENT_NAMES = ("mask", "keep", "random")


class Prediction(NamedTuple):
    positions: np.ndarray  # (k,) sorted positions in the example
    labels: np.ndarray  # (k,) the original token ids there
    counts: np.ndarray  # (3,) how many positions were MASKED, KEPT, RANDOM


class Masker:
    def __init__(self, vocab_size: int, special_ids: frozenset[int], mask_id: int,
                 masked_lm_prob: float, max_predictions: int):
        self.mask_id = mask_id
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions = max_predictions
        # Google draws the random replacement from the whole vocabulary, [CLS] [SEP] [PAD] [MASK]
        # included; a special token in the middle of text is noise the model never meets later,
        # so we draw from the ordinary tokens only.
        self.replacement_ids = np.setdiff1d(np.arange(vocab_size), sorted(special_ids))

    def __call__(self, ids: np.ndarray, a_len: int, rng: np.random.Generator) -> Prediction:
        """Mask `ids` ([CLS] A [SEP] B [SEP], A of `a_len` tokens) in place; return what to predict."""
        n = len(ids)
        text_len = n - 3
        # Google counts [CLS] and [SEP] in len(tokens) here, so the share is a little over 15 %
        # of the text tokens; we keep that (and Python's round) to match its output statistics.
        num = min(self.max_predictions, max(1, round(n * self.masked_lm_prob)), text_len)
        # Candidates are the text positions, never [CLS] or [SEP]: text index t sits at position
        # t + 1 in A and t + 2 in B (after A's [SEP]).
        # (Google shuffles all candidates and takes the first num; so does this.)
        chosen = rng.permutation(text_len)[:num]
        positions = np.sort(chosen + 1 + (chosen >= a_len))
        labels = ids[positions].copy()
        # One uniform draw per position split 0.8 / 0.1 / 0.1 into MASKED / KEPT / RANDOM; Google
        # draws twice (0.8, then 0.5 of the rest), which gives the same distribution.
        u = rng.random(num)
        kind = (u >= 0.8).astype(np.int64) + (u >= 0.9)
        ids[positions[kind == MASKED]] = self.mask_id
        randomised = positions[kind == RANDOM]
        if len(randomised):
            # floor(u * n) is uniform over the n replacement ids (to within 2**-53) and several
            # times faster than Generator.integers for a handful of draws
            picks = (rng.random(len(randomised)) * len(self.replacement_ids)).astype(np.int64)
            ids[randomised] = self.replacement_ids[picks]
        return Prediction(positions, labels, np.bincount(kind, minlength=3))
