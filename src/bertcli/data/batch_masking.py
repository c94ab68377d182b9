"""Static token-level masking of many examples at once: Masker's rule, without a Python loop.

Masker masks one example per call, which costs more than the rest of corpus building together
(about 100 µs an example). Here every example of a unit of work is masked in a few array
operations: each candidate position gets a uniform key, and an example predicts its `num`
lowest-keyed candidates, a uniformly random subset of the size Masker takes (Google's shuffle
of the candidates, then the first `num`). The [MASK]/random/unchanged split and the replacement
draws follow Masker exactly. Whole-word masking stays with Masker (its word choice is sequential).
"""

from __future__ import annotations

import numpy as np

from bertcli.data.arrays import offsets_from_lengths
from bertcli.data.masking import KEPT, MASKED, RANDOM, Masker


def can_batch(masker: Masker | None) -> bool:
    return masker is not None and not masker.rule.whole_word_mask


CHUNK_TOKENS = 1 << 17  # examples are masked in runs of about this many tokens, to bound the temporaries


def mask_rows(input_ids: np.ndarray, lengths: np.ndarray, masker: Masker, groups: list[tuple]) -> tuple:
    """mask_chunk over runs of whole examples of about CHUNK_TOKENS tokens (a fixed size, so the
    draws do not depend on anything but the examples and their generators)."""
    generator_of = np.repeat(np.arange(len(groups)), [count for _, count in groups])
    offsets = offsets_from_lengths(lengths.astype(np.int64))
    cuts = np.unique(np.r_[np.searchsorted(offsets, np.arange(0, offsets[-1], CHUNK_TOKENS), side="right") - 1,
                            len(lengths)])
    parts = []
    for first, stop in zip(cuts, cuts[1:]):
        runs = generator_of[first:stop]
        change = np.flatnonzero(np.diff(runs)) + 1
        starts, ends = np.r_[0, change], np.r_[change, len(runs)]
        chunk_groups = [(groups[runs[a]][0], int(b - a)) for a, b in zip(starts, ends)]
        parts.append(mask_chunk(input_ids[offsets[first]:offsets[stop]], lengths[first:stop], masker, chunk_groups))
    if not parts:
        return mask_chunk(input_ids, lengths, masker, [])
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
            np.sum([p[4] for p in parts], axis=0))


def mask_chunk(input_ids: np.ndarray, lengths: np.ndarray, masker: Masker, groups: list[tuple]) -> tuple:
    """Mask unmasked examples (flat `input_ids`, `lengths`) in a copy.

    `groups` is [(generator, number of examples)] in example order, covering them all: each
    group's masks come from its own generator (a document's, so that they do not depend on how
    documents were grouped into units of work). Returns (input_ids, positions, labels, counts,
    replacements) as the Examples fields.
    """
    ids = input_ids.copy()
    lengths = lengths.astype(np.int64)
    offsets = offsets_from_lengths(lengths)
    n = len(lengths)
    row = np.repeat(np.arange(n), lengths)
    candidate = ~masker.never_predicted[ids]
    candidates = np.bincount(row[candidate], minlength=n)
    # as Masker: masked_lm_prob of the text tokens (the candidates), rounded half to even like Python
    num = np.minimum(np.minimum(masker.max_predictions,
                                np.maximum(1, np.round(candidates * masker.masked_lm_prob).astype(np.int64))),
                     candidates)
    bounds = offsets_from_lengths(np.array([count for _, count in groups], dtype=np.int64))
    keys = _draw(groups, np.diff(offsets[bounds]))
    chosen = _lowest_keyed(keys, candidate, offsets, lengths, num)
    chosen_bounds = offsets_from_lengths(num)[bounds]
    labels = ids[chosen].copy()
    u = _draw(groups, np.diff(chosen_bounds))
    keep_below = 1.0 - masker.rule.random_token_prob
    kind = np.where(u < masker.rule.mask_token_prob, MASKED, np.where(u < keep_below, KEPT, RANDOM))
    ids[chosen[kind == MASKED]] = masker.mask_id
    is_random = kind == RANDOM
    randomised = chosen[is_random]
    group_of_example = np.repeat(np.arange(len(groups)), np.diff(bounds))
    per_group = np.bincount(group_of_example[row[chosen[is_random]]], minlength=len(groups))
    picks = (_draw(groups, per_group) * len(masker.replacement_ids)).astype(np.int64)
    ids[randomised] = masker.replacement_ids[picks]
    positions = (chosen - offsets[row[chosen]]).astype(np.int32)
    return ids, positions, labels, num.astype(np.int32), np.bincount(kind, minlength=3).astype(np.int64)


def _lowest_keyed(keys: np.ndarray, candidate: np.ndarray, offsets: np.ndarray,
                  lengths: np.ndarray, num: np.ndarray) -> np.ndarray:
    """Flat positions of each example's num[r] lowest-keyed candidates, ascending. An example is at
    most a sequence long, so sorting each one as a row of an (examples, longest) table costs far
    less than one sort of the whole run (log 128 against log 10^5 comparisons a key, in cache)."""
    n, width = len(lengths), int(lengths.max()) if len(lengths) else 0
    values = np.where(candidate, keys, 2.0)  # 2.0: not a candidate (nor, below, past an example's end)
    if n * width == len(keys):  # examples of one length (packed, or all full): the flat run is the table
        table = values.reshape(n, width)
    else:
        table = np.full(n * width, 2.0)
        # a position's place in the table: its flat index + (row * width - where its row starts)
        table[np.arange(len(keys)) + np.repeat(np.arange(n) * width - offsets[:-1], lengths)] = values
        table = table.reshape(n, width)
    most = int(num.max()) if len(num) else 0
    order = np.argsort(table, axis=1)[:, :most]  # each example's positions by key, candidates first
    order[np.arange(most) >= num[:, None]] = width  # beyond num[r]: dropped below
    order.sort(axis=1)
    return (offsets[:-1, None] + order)[order < width]


def _draw(groups: list[tuple], sizes: np.ndarray) -> np.ndarray:
    """sizes[g] uniforms from group g's generator, laid end to end."""
    parts = [rng.random(int(size)) for (rng, _), size in zip(groups, sizes)]
    return np.concatenate(parts) if parts else np.zeros(0)
