"""Static token-level masking of many examples at once: Masker's rule, without a Python loop.

Masker masks one example per call, which costs more than the rest of corpus building together
(about 100 µs an example). Here every example of a unit of work is masked in a few array
operations: each candidate position gets a random key, and an example predicts its `num`
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
    candidate = ~masker.never_predicted[ids]
    candidates = np.add.reduceat(candidate.view(np.uint8), offsets[:-1], dtype=np.int64) if n else np.zeros(0, np.int64)
    # as Masker: masked_lm_prob of the text tokens (the candidates), rounded half to even like Python
    num = np.minimum(np.minimum(masker.max_predictions,
                                np.maximum(1, np.round(candidates * masker.masked_lm_prob).astype(np.int64))),
                     candidates)
    bounds = offsets_from_lengths(np.array([count for _, count in groups], dtype=np.int64))
    keys = _draw_words(groups, np.diff(offsets[bounds]))
    positions = _lowest_keyed(keys, candidate, lengths, num)  # within each example, example after example
    chosen = np.repeat(offsets[:-1], num) + positions
    chosen_bounds = offsets_from_lengths(num)[bounds]
    labels = ids[chosen].copy()
    u = _draw(groups, np.diff(chosen_bounds))
    keep_below = 1.0 - masker.rule.random_token_prob
    kind = np.where(u < masker.rule.mask_token_prob, MASKED, np.where(u < keep_below, KEPT, RANDOM))
    ids[chosen[kind == MASKED]] = masker.mask_id
    is_random = kind == RANDOM
    randomised = chosen[is_random]
    group_of_chosen = np.repeat(np.arange(len(groups)), np.diff(chosen_bounds))
    per_group = np.bincount(group_of_chosen[is_random], minlength=len(groups))
    picks = (_draw(groups, per_group) * len(masker.replacement_ids)).astype(np.int64)
    ids[randomised] = masker.replacement_ids[picks]
    return ids, positions.astype(np.int32), labels, num.astype(np.int32), np.bincount(kind, minlength=3).astype(np.int64)


def _lowest_keyed(words: np.ndarray, candidate: np.ndarray, lengths: np.ndarray, num: np.ndarray) -> np.ndarray:
    """Positions (within its example) of each example's num[r] lowest-keyed candidates, ascending,
    example after example. `words` holds a random 64-bit word per position, whose top bits are its
    key (24 bits for examples of 128 tokens, 22 for 512), a tie going to the earlier position. (With
    24 bits, the last chosen and the first left out tie in about one example of 130,000, and of
    those two equally random candidates the earlier is taken.)

    An example is at most a sequence long, so each is sorted as a row of an (examples, longest)
    table, key and position packed into one 32-bit integer: a direct sort of small integers, several
    times faster than an argsort of float keys (and than one sort of the whole run)."""
    n, width = len(lengths), int(lengths.max()) if len(lengths) else 0
    position_bits = max(1, (width - 1).bit_length())
    dtype = np.dtype(np.uint32 if position_bits <= 10 else np.uint64)  # 32 bits up to 1,024 tokens
    key_bits = dtype.itemsize * 8 - position_bits - 1  # the sentinel, 2**key_bits, sorts after every key
    keys = (words >> np.uint64(64 - key_bits)).astype(dtype)
    not_candidate = dtype.type(1 << key_bits)
    keys[~candidate] = not_candidate
    if n * width == len(keys):  # examples of one length (packed, or all full): the flat run is the table
        table = keys.reshape(n, width)
    else:  # past an example's end: not a candidate (a boolean mask fills the rows in flat order)
        table = np.full((n, width), not_candidate, dtype=dtype)
        table[np.arange(width) < lengths[:, None]] = keys
    table <<= dtype.type(position_bits)
    table |= np.arange(width, dtype=dtype)
    table.sort(axis=1)
    most = int(num.max()) if len(num) else 0
    order = (table[:, :most] & dtype.type((1 << position_bits) - 1)).astype(np.int64)
    order[np.arange(most) >= num[:, None]] = width  # beyond num[r]: dropped below
    order.sort(axis=1)
    return order[order < width]


def _draw(groups: list[tuple], sizes: np.ndarray) -> np.ndarray:
    """sizes[g] uniforms from group g's generator, laid end to end."""
    parts = [rng.random(int(size)) for (rng, _), size in zip(groups, sizes)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _draw_words(groups: list[tuple], sizes: np.ndarray) -> np.ndarray:
    """sizes[g] random 64-bit words from group g's generator, laid end to end. (A uniform is drawn
    from one such word, its top 53 bits: the generator moves on alike.)"""
    parts = [rng.bit_generator.random_raw(int(size)) for (rng, _), size in zip(groups, sizes)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)
