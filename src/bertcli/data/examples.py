"""Pretraining examples: NSP pairs made into [CLS] A [SEP] B [SEP] and masked, in ragged arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bertcli.data.arrays import offsets_from_lengths, take_rows
from bertcli.data.documents import Documents
from bertcli.data.masking import Masker, Prediction
from bertcli.data.pairs import document_pairs


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
    With no masker (dynamic masking) the examples are left unmasked and predict nothing.

    Like create_instances_from_document, pairs and their masks are drawn from one generator per
    document, so a document's examples do not depend on which process made them.
    """
    ids_parts, positions_parts, labels_parts = [], [], []
    lengths, a_lens, mlm_counts, nsp, doc_ids = [], [], [], [], []
    replacements = np.zeros(3, dtype=np.int64)
    for d in documents:
        rng = rngs(d)
        for pair in document_pairs(docs, d, rng, max_seq_len - 3, short_seq_prob, random_next_prob):
            a_len, b_len = pair.a_stop - pair.a_start, pair.b_stop - pair.b_start
            ids = np.empty(a_len + b_len + 3, dtype=docs.tokens.dtype)
            ids[0], ids[a_len + 1], ids[-1] = cls_id, sep_id, sep_id
            ids[1:a_len + 1] = docs.tokens[pair.a_start:pair.a_stop]
            ids[a_len + 2:-1] = docs.tokens[pair.b_start:pair.b_stop]
            prediction = masker(ids, rng) if masker is not None else UNMASKED
            ids_parts.append(ids)
            positions_parts.append(prediction.positions)
            labels_parts.append(prediction.labels)
            replacements += prediction.counts
            lengths.append(len(ids))
            a_lens.append(a_len)
            mlm_counts.append(len(prediction.positions))
            nsp.append(int(pair.is_random))
            doc_ids.append((d, pair.b_document))
    token_dtype = docs.tokens.dtype
    return Examples(
        input_ids=np.concatenate(ids_parts) if ids_parts else np.zeros(0, token_dtype),
        lengths=np.array(lengths, dtype=np.int32),
        a_lens=np.array(a_lens, dtype=np.int32),
        mlm_positions=np.concatenate(positions_parts).astype(np.int32) if positions_parts else np.zeros(0, np.int32),
        mlm_labels=np.concatenate(labels_parts).astype(token_dtype) if labels_parts else np.zeros(0, token_dtype),
        mlm_counts=np.array(mlm_counts, dtype=np.int32),
        next_sentence_labels=np.array(nsp, dtype=np.uint8),
        document_ids=np.array(doc_ids, dtype=np.int32).reshape(-1, 2),
        replacements=replacements,
    )
