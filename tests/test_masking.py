"""Masking and NSP pair rules on synthetic token ids (no tokenizer, no files)."""

from __future__ import annotations

import numpy as np
import pytest

from bertcli.data.documents import Documents
from bertcli.data.masking import KEPT, MASKED, RANDOM, Masker
from bertcli.data.pairs import NspBalance, Pair, document_pairs, truncate_pair

PAD, UNK, CLS, SEP, MASK = range(5)
SPECIALS = frozenset(range(5))
VOCAB = 1000


def make_example(rng, n: int, a_len: int, vocab: int = VOCAB) -> np.ndarray:
    ids = rng.integers(5, vocab, n).astype(np.int32)
    ids[0], ids[a_len + 1], ids[-1] = CLS, SEP, SEP
    return ids


def test_masking_statistics_follow_bert():
    rng = np.random.default_rng(0)
    masker = Masker(VOCAB, SPECIALS, MASK, masked_lm_prob=0.15, max_predictions=20)
    counts = np.zeros(3, dtype=np.int64)
    masked = text = 0
    for _ in range(2000):
        n = int(rng.integers(5, 129))
        a_len = int(rng.integers(1, n - 3))
        original = make_example(rng, n, a_len)
        ids = original.copy()
        positions, labels, kinds = masker(ids, rng)
        # create_pretraining_data.py: num_to_predict over len(tokens), specials included, capped
        assert len(positions) == min(20, max(1, round((n - 3) * 0.15)))
        assert np.all(np.diff(positions) > 0), "positions are sorted and distinct"
        assert not set(positions.tolist()) & {0, a_len + 1, n - 1}, "never [CLS] or [SEP]"
        assert np.array_equal(labels, original[positions]), "labels are the original ids"
        untouched = np.setdiff1d(np.arange(n), positions)
        assert np.array_equal(ids[untouched], original[untouched])
        assert not set(ids[ids != MASK].tolist()) - set(original.tolist()) - set(range(5, VOCAB))
        counts += kinds
        masked += len(positions)
        text += n - 3
    shares = counts / counts.sum()
    assert abs(shares[MASKED] - 0.8) < 0.015
    assert abs(shares[KEPT] - 0.1) < 0.01
    assert abs(shares[RANDOM] - 0.1) < 0.01
    assert 0.14 < masked / text < 0.19  # 15 % of len(tokens) with [CLS]/[SEP] counted, capped at 20


def test_random_replacements_are_never_special_and_cover_the_vocabulary():
    rng = np.random.default_rng(1)
    masker = Masker(50, SPECIALS, MASK, masked_lm_prob=0.5, max_predictions=100)
    drawn = set()
    for _ in range(500):
        original = make_example(rng, 60, 20, vocab=50)
        ids = original.copy()
        positions, _, _ = masker(ids, rng)
        replaced = ids[positions]
        drawn |= set(replaced[(replaced != MASK) & (replaced != original[positions])].tolist())
    assert drawn <= set(range(5, 50)), "only ordinary tokens, never [PAD] [UNK] [CLS] [SEP] [MASK]"
    assert len(drawn) > 40


def test_masked_share_is_fifteen_percent_without_the_cap():
    rng = np.random.default_rng(2)
    masker = Masker(VOCAB, SPECIALS, MASK, masked_lm_prob=0.15, max_predictions=512)
    n, a_len = 512, 200
    predicted = [len(masker(make_example(rng, n, a_len), rng).positions) for _ in range(50)]
    assert set(predicted) == {round(509 * 0.15)}


# ----------------------------------------------------------------------------- NSP pairs


def synthetic_documents(rng, num_docs: int = 20, sentences=(5, 40), tokens=(1, 25)) -> Documents:
    """Documents whose token ids are their global positions, so ranges can be checked exactly."""
    docs, next_id = [], 0
    for _ in range(num_docs):
        doc = []
        for _ in range(int(rng.integers(*sentences))):
            length = int(rng.integers(*tokens))
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    return Documents.from_ids(docs, np.int32)


def pairs_of(docs, max_num_tokens, short_seq_prob=0.1, random_next_prob=0.5, seed=0):
    out = []
    balance = NspBalance(random_next_prob)
    for d in range(docs.num_documents):
        rng = np.random.default_rng([seed, d])
        out += [(d, Pair(*p)) for p in document_pairs(docs, d, rng, max_num_tokens, short_seq_prob, random_next_prob,
                                               balance)]
    return out


def document_of(docs: Documents, token: int) -> int:
    sentence = np.searchsorted(docs.sentence_offsets, token, side="right") - 1
    return int(np.searchsorted(docs.document_offsets, sentence, side="right") - 1)


def test_pairs_follow_the_nsp_rules():
    docs = synthetic_documents(np.random.default_rng(3))
    max_num_tokens = 61
    pairs = pairs_of(docs, max_num_tokens)
    sentence_starts = set(docs.sentence_offsets.tolist())
    for d, p in pairs:
        a_len, b_len = p.a_stop - p.a_start, p.b_stop - p.b_start
        assert a_len >= 1 and b_len >= 1 and a_len + b_len <= max_num_tokens
        assert document_of(docs, p.a_start) == document_of(docs, p.a_stop - 1) == d
        assert document_of(docs, p.b_start) == document_of(docs, p.b_stop - 1) == p.b_document
        if p.is_random:
            assert p.b_document != d
        else:
            assert p.b_document == d
            assert p.b_start >= p.a_stop  # B comes after A in the same document
            if a_len + b_len < max_num_tokens:  # not truncated: B is exactly A's continuation
                assert p.b_start == p.a_stop
                assert p.a_start in sentence_starts and p.b_stop in sentence_starts
    # pooled over several seeds: one seed's 100-odd pairs vary by +-0.04
    random_share = np.mean([p.is_random for seed in range(6) for _, p in pairs_of(docs, max_num_tokens, seed=seed)])
    assert 0.47 < random_share < 0.53  # single-segment chunks' forced random pairs are balanced out


@pytest.mark.parametrize("random_next_prob", [0.5, 0.3])
def test_nsp_balance_holds_with_many_single_segment_chunks(random_next_prob):
    # long sentences against a short target: many chunks hold one segment and must be random
    docs = synthetic_documents(np.random.default_rng(4), num_docs=60, sentences=(2, 30), tokens=(5, 30))
    shares = [p.is_random for seed in range(4)
              for _, p in pairs_of(docs, 50, random_next_prob=random_next_prob, seed=seed)]
    assert abs(np.mean(shares) - random_next_prob) < 0.02, np.mean(shares)


def test_random_next_puts_unused_segments_back():
    docs = synthetic_documents(np.random.default_rng(4), num_docs=6)
    # no truncation and no short targets: the A segments of all-random pairs tile each document
    pairs = pairs_of(docs, max_num_tokens=10_000, short_seq_prob=0.0, random_next_prob=1.0)
    for d in range(docs.num_documents):
        a_ranges = [(p.a_start, p.a_stop) for e, p in pairs if e == d]
        first = docs.sentence_offsets[docs.document_offsets[d]]
        last = docs.sentence_offsets[docs.document_offsets[d + 1]]
        assert a_ranges[0][0] == first and a_ranges[-1][1] == last
        assert all(stop == start for (_, stop), (start, _) in zip(a_ranges, a_ranges[1:]))


def test_is_next_pairs_cover_the_document_in_order():
    docs = synthetic_documents(np.random.default_rng(5), num_docs=4, tokens=(1, 6))
    pairs = pairs_of(docs, max_num_tokens=10_000, short_seq_prob=0.0, random_next_prob=0.0)
    for d in range(docs.num_documents):
        covered = []
        for e, p in pairs:
            if e == d:
                covered += list(range(p.a_start, p.a_stop))
                if not p.is_random:
                    covered += list(range(p.b_start, p.b_stop))
        first = docs.sentence_offsets[docs.document_offsets[d]]
        last = docs.sentence_offsets[docs.document_offsets[d + 1]]
        assert covered == list(range(first, last))


def test_short_seq_prob_makes_short_targets():
    docs = synthetic_documents(np.random.default_rng(6), num_docs=10, sentences=(400, 500), tokens=(1, 4))
    lengths = lambda prob: np.mean([(p.a_stop - p.a_start) + (p.b_stop - p.b_start)  # noqa: E731
                                    for _, p in pairs_of(docs, 125, short_seq_prob=prob)])
    assert lengths(1.0) < 0.7 * lengths(0.0)


@pytest.mark.parametrize("a, b", [(50, 30), (30, 50), (40, 40), (100, 1)])
def test_truncate_pair_trims_the_longer_side_from_both_ends(a, b):
    fronts = backs = 0
    for seed in range(20):
        a0, a1, b0, b1 = truncate_pair(0, a, 1000, 1000 + b, 40, np.random.default_rng(seed))
        la, lb = a1 - a0, b1 - b0
        assert la + lb == 40 and la >= 1 and lb >= 1
        assert 0 <= a0 and a1 <= a and 1000 <= b0 and b1 <= 1000 + b
        # the longer side is cut down first, then both alternate; B is cut on a tie
        assert abs(la - lb) <= 1 or min(la, lb) == min(a, b)
        if a >= b:
            fronts += a0 > 0
            backs += a1 < a
    if a > b:
        assert fronts and backs


def test_truncate_pair_leaves_short_pairs_alone():
    assert truncate_pair(0, 10, 20, 30, 40, np.random.default_rng(0)) == (0, 10, 20, 30)


def test_batch_masks_take_each_examples_lowest_keyed_candidates():
    # data.batch_masking picks, for every example at once, the `num` candidates with the lowest keys
    # (Google's shuffle of the candidates, then the first `num`), a key being the top bits of a
    # random word and a tie going to the earlier position; checked against that rule one example at
    # a time, on examples of every length (the ragged table path) and of one length (the reshape path),
    # with keys that often tie
    from bertcli.data.arrays import offsets_from_lengths
    from bertcli.data.batch_masking import _lowest_keyed

    rng = np.random.default_rng(5)
    for lengths in (rng.integers(3, 40, 300), np.full(200, 32), rng.integers(600, 1500, 5)):
        offsets = offsets_from_lengths(lengths)
        words = rng.bit_generator.random_raw(int(offsets[-1]))
        words[rng.random(len(words)) < 0.3] &= np.uint64((1 << 40) - 1)  # top 24 bits 0: ties
        candidate = rng.random(len(words)) < 0.8
        counts = np.add.reduceat(candidate, offsets[:-1], dtype=np.int64)
        num = np.minimum(counts, rng.integers(0, 8, len(lengths)))
        chosen = _lowest_keyed(words, candidate, lengths, num)
        expected = []
        for r, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:])):
            position_bits = int(lengths.max() - 1).bit_length()
            key_bits = (32 if position_bits <= 10 else 64) - position_bits - 1  # 24 for 128-token examples
            keys = (words[start:stop] >> np.uint64(64 - key_bits)).tolist()
            ranked = sorted((keys[p], p) for p in range(stop - start) if candidate[start + p])
            expected += sorted(p for _, p in ranked[:num[r]])
        assert chosen.tolist() == expected
