"""Masked-LM predictions for one example, as create_masked_lm_predictions in create_pretraining_data.py.

One Masker serves every scheme: static masking (build-corpus masks each dupe_factor copy once),
dynamic masking (the corpus reader masks an example each time it is read), whole-word masking
(Google's --do_whole_word_mask) and any masking rate or [MASK]/random/unchanged split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# What happened at a predicted position (BERT paper, section 3.1: 80 % / 10 % / 10 %).
MASKED, KEPT, RANDOM = 0, 1, 2
REPLACEMENT_NAMES = ("mask", "keep", "random")


@dataclass(frozen=True)
class MaskingRule:
    """How many tokens to predict and what becomes of them; recorded in a corpus's manifest."""

    masked_lm_prob: float = 0.15
    max_predictions: int = 20
    mask_token_prob: float = 0.8  # predicted tokens replaced by [MASK]
    random_token_prob: float = 0.1  # ... by a random token; the rest stay unchanged
    whole_word_mask: bool = False

    def to_dict(self) -> dict:
        return {"masked_lm_prob": self.masked_lm_prob, "max_predictions": self.max_predictions,
                "mask_token_prob": self.mask_token_prob, "random_token_prob": self.random_token_prob,
                "whole_word_mask": self.whole_word_mask}


class Prediction(NamedTuple):
    positions: np.ndarray  # (k,) sorted positions in the example
    labels: np.ndarray  # (k,) the original token ids there
    counts: np.ndarray  # (3,) how many positions were MASKED, KEPT, RANDOM


class Masker:
    """Masks examples in place. `word_starts` (one bool per vocabulary id, see
    Tokenizer.word_start_table) is needed only for whole-word masking."""

    def __init__(self, vocab_size: int, special_ids: frozenset[int], mask_id: int, masked_lm_prob: float = 0.15,
                 max_predictions: int = 20, rule: MaskingRule | None = None,
                 word_starts: np.ndarray | None = None, unk_id: int | None = None):
        self.rule = rule or MaskingRule(masked_lm_prob=masked_lm_prob, max_predictions=max_predictions)
        self.mask_id = mask_id
        self.masked_lm_prob = self.rule.masked_lm_prob
        self.max_predictions = self.rule.max_predictions
        self.is_special = np.zeros(vocab_size, dtype=bool)
        self.is_special[sorted(special_ids)] = True
        # Positions that may be predicted: all but [CLS] [SEP] [PAD] [MASK]. [UNK] stays a
        # candidate, as in Google's code, so the statistics of text with unknown pieces match it.
        self.never_predicted = self.is_special.copy()
        if unk_id is not None:
            self.never_predicted[unk_id] = False
        if self.rule.whole_word_mask and word_starts is None:
            raise ValueError("whole-word masking needs the tokenizer's word_starts table")
        self.word_starts = word_starts
        # Google draws the random replacement from the whole vocabulary, [CLS] [SEP] [PAD] [MASK]
        # included; a special token in the middle of text is noise the model never meets later,
        # so we draw from the ordinary tokens only.
        self.replacement_ids = np.flatnonzero(~self.is_special)

    def __call__(self, ids: np.ndarray, rng: np.random.Generator) -> Prediction:
        """Mask `ids` (an example with its [CLS]/[SEP] tokens) in place; return what to predict.

        Candidates are the non-special positions, so [CLS] and every [SEP] (between A and B, or
        between packed documents) are never predicted.
        """
        n = len(ids)
        candidates = np.flatnonzero(~self.never_predicted[ids])
        # Google counts [CLS] and [SEP] in len(tokens) here, so the share is a little over 15 %
        # of the text tokens; we keep that (and Python's round) to match its output statistics.
        num = min(self.max_predictions, max(1, round(n * self.masked_lm_prob)), len(candidates))
        if self.rule.whole_word_mask:
            positions = self._whole_words(ids, candidates, num, rng)
        else:
            # Google shuffles all candidates and takes the first num; so does this.
            positions = np.sort(candidates[rng.permutation(len(candidates))[:num]])
        labels = ids[positions].copy()
        # One uniform draw per position split into MASKED / KEPT / RANDOM (0.8 / 0.1 / 0.1 by
        # default); Google draws twice (0.8, then 0.5 of the rest), which gives the same distribution.
        u = rng.random(len(positions))
        keep_below = 1.0 - self.rule.random_token_prob
        kind = np.where(u < self.rule.mask_token_prob, MASKED, np.where(u < keep_below, KEPT, RANDOM))
        ids[positions[kind == MASKED]] = self.mask_id
        randomised = positions[kind == RANDOM]
        if len(randomised):
            # floor(u * n) is uniform over the n replacement ids (to within 2**-53) and several
            # times faster than Generator.integers for a handful of draws
            picks = (rng.random(len(randomised)) * len(self.replacement_ids)).astype(np.int64)
            ids[randomised] = self.replacement_ids[picks]
        return Prediction(positions, labels, np.bincount(kind, minlength=3))

    def _whole_words(self, ids: np.ndarray, candidates: np.ndarray, num: int,
                     rng: np.random.Generator) -> np.ndarray:
        """Google's do_whole_word_mask: shuffle the words, take whole words while they fit in `num`
        predictions, skipping a word that would overflow (a shorter later one may still fit)."""
        if len(candidates) == 0:
            return candidates
        # a word starts at a piece that carries the boundary marker, or after a special token
        starts = self.word_starts[ids[candidates]] | np.r_[True, np.diff(candidates) > 1]
        bounds = np.r_[np.flatnonzero(starts), len(candidates)]
        chosen, total = [], 0
        for w in rng.permutation(len(bounds) - 1):
            if total >= num:
                break
            size = int(bounds[w + 1] - bounds[w])
            if total + size > num:
                continue
            chosen.append(candidates[bounds[w]:bounds[w + 1]])
            total += size
        return np.sort(np.concatenate(chosen)) if chosen else candidates[:0]
