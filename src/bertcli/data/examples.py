"""Pretraining examples: NSP pairs made into [CLS] A [SEP] B [SEP] and masked, in ragged arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bertcli.data.arrays import offsets_from_lengths, range_indices, take_rows
from bertcli.data.documents import Documents
from bertcli.data.batch_masking import can_batch, mask_rows
from bertcli.data.masking import Masker, Prediction
from bertcli.data.pairs import Pair, document_pairs


@dataclass
class Examples:
    """N examples. Row r of a ragged field is flat[offsets[r]:offsets[r + 1]] (offsets from lengths)."""

    input_ids: np.ndarray  # flat, after masking (as Google's tf records)
    lengths: np.ndarray  # (N,) tokens per example, [CLS] and both [SEP] included
    a_lens: np.ndarray  # (N,) tokens of A: token_type_ids are 0 on the first a_len + 2 positions
    mlm_positions: np.ndarray  # flat, sorted within each example
    mlm_labels: np.ndarray  # flat, the original ids at mlm_positions
    mlm_counts: np.ndarray  # (N,) predictions per example
    next_sentence_labels: np.ndarray  # (N,) 0 = B follows A, 1 = B is random (Hugging Face convention)
    document_ids: np.ndarray  # (N, 2) the documents of A and B, for checks and debugging
    replacements: np.ndarray  # (3,) predicted positions masked / kept / randomised

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def concat(cls, parts: list["Examples"]) -> "Examples":
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _ROW_FIELDS},
                   replacements=sum(p.replacements for p in parts))

    def take(self, rows: np.ndarray) -> "Examples":
        """The given examples, in the given order."""
        input_ids, lengths = take_rows(self.input_ids, offsets_from_lengths(self.lengths), rows)
        mlm_offsets = offsets_from_lengths(self.mlm_counts)
        mlm_positions, mlm_counts = take_rows(self.mlm_positions, mlm_offsets, rows)
        mlm_labels, _ = take_rows(self.mlm_labels, mlm_offsets, rows)
        return Examples(input_ids, lengths, self.a_lens[rows], mlm_positions, mlm_labels, mlm_counts,
                        self.next_sentence_labels[rows], self.document_ids[rows], self.replacements)


# What an unmasked example predicts: nothing (its masks are drawn when pretraining reads it).
UNMASKED = Prediction(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(3, np.int64))

_ROW_FIELDS = ("input_ids", "lengths", "a_lens", "mlm_positions", "mlm_labels", "mlm_counts",
               "next_sentence_labels", "document_ids")


def make_examples(docs: Documents, documents: range, rngs, max_seq_len: int, short_seq_prob: float,
                  random_next_prob: float, masker: Masker | None, cls_id: int, sep_id: int) -> Examples:
    """The masked examples of the given documents; `rngs(d)` is document d's random generator.
    With no masker (dynamic masking, or masks drawn afterwards by data.batch_masking) the examples
    are left unmasked and predict nothing.

    Like create_instances_from_document, pairs and their masks are drawn from one generator per
    document, so a document's examples do not depend on which process made them. The examples
    are assembled with array operations from the pairs' token ranges.
    """
    pairs, owners, generators = [], [], []
    for d in documents:
        rng = rngs(d)
        found = document_pairs(docs, d, rng, max_seq_len - 3, short_seq_prob, random_next_prob)
        pairs += found
        owners.append(d)
        generators.append((rng, len(found)))
    token_dtype = docs.tokens.dtype
    # one conversion of the pairs (tuples of ints) to a table, then columns
    table = np.array(pairs, dtype=np.int64).reshape(-1, len(Pair._fields))
    a_start, a_stop, b_start, b_stop, b_document, is_random = table.T
    own_document = np.repeat(np.array(owners, dtype=np.int64), [count for _, count in generators])
    doc_ids = np.stack([own_document, b_document], axis=1).astype(np.int32)
    next_sentence_labels = is_random.astype(np.uint8)
    a_len, b_len = a_stop - a_start, b_stop - b_start
    lengths = a_len + b_len + 3
    offsets = offsets_from_lengths(lengths)
    input_ids = np.empty(int(offsets[-1]), dtype=token_dtype)
    starts = offsets[:-1]
    input_ids[starts] = cls_id
    input_ids[starts + a_len + 1] = sep_id
    input_ids[offsets[1:] - 1] = sep_id
    input_ids[range_indices(starts + 1, starts + 1 + a_len)] = docs.tokens[range_indices(a_start, a_stop)]
    input_ids[range_indices(starts + a_len + 2, offsets[1:] - 1)] = docs.tokens[range_indices(b_start, b_stop)]
    n = len(pairs)
    positions_parts, labels_parts = [], []
    mlm_counts = np.zeros(n, dtype=np.int32)
    replacements = np.zeros(3, dtype=np.int64)
    if can_batch(masker):  # all at once, each document's masks from its generator
        return masked(Examples(input_ids, lengths.astype(np.int32), a_len.astype(np.int32), np.zeros(0, np.int32),
                               np.zeros(0, token_dtype), mlm_counts,
                               next_sentence_labels, doc_ids, replacements), masker, generators)
    if masker is not None:  # one example at a time (whole-word masking), from its document's generator
        r = 0
        for rng, count in generators:
            for _ in range(count):
                prediction = masker(input_ids[offsets[r]:offsets[r + 1]], rng)
                positions_parts.append(prediction.positions)
                labels_parts.append(prediction.labels)
                mlm_counts[r] = len(prediction.positions)
                replacements += prediction.counts
                r += 1
    return Examples(
        input_ids=input_ids,
        lengths=lengths.astype(np.int32),
        a_lens=a_len.astype(np.int32),
        mlm_positions=np.concatenate(positions_parts).astype(np.int32) if positions_parts else np.zeros(0, np.int32),
        mlm_labels=np.concatenate(labels_parts).astype(token_dtype) if labels_parts else np.zeros(0, token_dtype),
        mlm_counts=mlm_counts,
        next_sentence_labels=next_sentence_labels,
        document_ids=doc_ids,
        replacements=replacements,
    )


def masked(examples: Examples, masker: Masker, groups: list[tuple]) -> Examples:
    """Unmasked `examples` with static token-level masks drawn by data.batch_masking; `groups` is
    [(generator, number of examples)] in order."""
    ids, positions, labels, counts, replacements = mask_rows(examples.input_ids, examples.lengths, masker, groups)
    return dataclasses.replace(examples, input_ids=ids, mlm_positions=positions,
                               mlm_labels=labels.astype(examples.input_ids.dtype), mlm_counts=counts,
                               replacements=replacements)
