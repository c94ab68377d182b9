"""MLM-only examples: text packed into full-length sequences, RoBERTa's FULL-SENTENCES.

Documents are laid end to end with [SEP] after each, and the stream is cut into sequences of
exactly max_seq_len tokens ([CLS] + max_seq_len - 2 text tokens + [SEP]) that cross sentence and
document boundaries freely, so that no position is padding (Liu et al. 2019, section 4.2). This is
the objective for corpora of short independent texts (reviews, questions), where NSP pairs do not
exist; the model trains on masked LM alone.

Each dupe_factor copy shuffles the documents and starts the cut at a random offset, so copies
differ in their sequence boundaries as well as in their masks. The tail that does not fill a
sequence is dropped (fewer than max_seq_len tokens per unit of work).
"""

from __future__ import annotations

import numpy as np

from bertcli.data.arrays import range_indices
from bertcli.data.documents import Documents
from bertcli.data.examples import UNMASKED, Examples
from bertcli.data.masking import Masker


def make_packed_examples(docs: Documents, documents: range, rng: np.random.Generator, max_seq_len: int,
                         masker: Masker | None, cls_id: int, sep_id: int) -> Examples:
    """Packed examples from `documents` (a range of docs); no masker means dynamic masking."""
    width = max_seq_len - 2  # text tokens per sequence, between [CLS] and the final [SEP]
    order = np.asarray(documents, dtype=np.int64)[rng.permutation(len(documents))]
    stream, owner = _stream(docs, order, sep_id)
    offset = int(rng.integers(0, width)) if len(stream) > 2 * width else 0
    count = (len(stream) - offset) // width
    body = stream[offset:offset + count * width].reshape(count, width)
    owners = owner[offset:offset + count * width].reshape(count, width)
    rows = np.empty((count, max_seq_len), dtype=docs.tokens.dtype)
    rows[:, 0], rows[:, 1:-1], rows[:, -1] = cls_id, body, sep_id

    positions_parts, labels_parts, mlm_counts = [], [], np.zeros(count, np.int32)
    replacements = np.zeros(3, dtype=np.int64)
    for r in range(count):
        prediction = masker(rows[r], rng) if masker is not None else UNMASKED
        positions_parts.append(prediction.positions)
        labels_parts.append(prediction.labels)
        mlm_counts[r] = len(prediction.positions)
        replacements += prediction.counts
    token_dtype = docs.tokens.dtype
    return Examples(
        input_ids=rows.reshape(-1),
        lengths=np.full(count, max_seq_len, dtype=np.int32),
        a_lens=np.full(count, width, dtype=np.int32),  # one segment: token_type_ids are all 0
        mlm_positions=np.concatenate(positions_parts or [np.zeros(0)]).astype(np.int32),
        mlm_labels=np.concatenate(labels_parts or [np.zeros(0)]).astype(token_dtype),
        mlm_counts=mlm_counts,
        next_sentence_labels=np.zeros(count, dtype=np.uint8),  # unused: there is no NSP
        document_ids=np.stack([owners[:, 0], owners[:, -1]], axis=1).astype(np.int32).reshape(-1, 2),
        replacements=replacements,
    )


def _stream(docs: Documents, order: np.ndarray, sep_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The tokens of documents `order` with [SEP] after each, and the document of every token."""
    first = docs.sentence_offsets[docs.document_offsets[order]]
    stop = docs.sentence_offsets[docs.document_offsets[order + 1]]
    lengths = stop - first + 1  # + the [SEP]
    ends = np.cumsum(lengths)
    stream = np.full(int(ends[-1]) if len(ends) else 0, sep_id, dtype=docs.tokens.dtype)
    is_text = np.ones(len(stream), dtype=bool)
    is_text[ends - 1] = False
    stream[is_text] = docs.tokens[range_indices(first, stop)]
    return stream, np.repeat(order, lengths)
