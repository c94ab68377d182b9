"""A corpus's statistics: what build-corpus counts per split, and the shares it reports from them.

Counts are added block by block while the shards are written; `sum_statistics` adds the counts of
several splits, or of the parts of a `--num-shards` build (merge-corpus), and recomputes the shares.
"""

from __future__ import annotations

import numpy as np

from bertcli.data.documents import Documents
from bertcli.data.examples import Examples
from bertcli.data.masking import REPLACEMENT_NAMES

HISTOGRAM_BINS = 16  # the sequence-length histogram in the statistics


class SplitStatistics:
    """Counts over one split, added block by block."""

    def __init__(self, max_seq_len: int, tokenizer):
        self.max_seq_len, self.tokenizer = max_seq_len, tokenizer
        self.counts = dict.fromkeys(COUNTS, 0)
        self.replacements = np.zeros(3, dtype=np.int64)
        self.lengths = np.zeros(max_seq_len + 1, dtype=np.int64)

    def add(self, docs: Documents, examples: Examples) -> None:
        c = self.counts
        c["documents"] += docs.num_documents
        c["sentences"] += docs.num_sentences
        c["source_tokens"] += docs.num_tokens  # before dupe_factor copies
        c["single_segment_documents"] += int(np.sum(np.diff(docs.document_offsets) == 1))
        c["unk_tokens"] += int(np.sum(docs.tokens == self.tokenizer.unk_id))
        c["examples"] += len(examples)
        tokens = int(examples.lengths.sum())
        c["tokens"] += tokens  # in examples, [CLS] and [SEP] included
        # [CLS] and every [SEP] (one per pair half, or one per packed document end) are not text
        c["text_tokens"] += tokens - int(np.count_nonzero(examples.input_ids == self.tokenizer.cls_id)
                                         + np.count_nonzero(examples.input_ids == self.tokenizer.sep_id))
        c["masked"] += int(examples.mlm_counts.sum())
        c["random_next"] += int(examples.next_sentence_labels.sum())  # 0 without NSP (objective mlm)
        self.replacements += examples.replacements
        self.lengths += np.bincount(examples.lengths, minlength=self.max_seq_len + 1)[:self.max_seq_len + 1]

    def result(self) -> dict:
        counts = {**self.counts, "replacements": dict(zip(REPLACEMENT_NAMES, self.replacements.tolist())),
                  "length_counts": self.lengths.tolist()}
        return with_shares(counts, self.max_seq_len)


COUNTS = ("documents", "sentences", "source_tokens", "single_segment_documents", "unk_tokens", "examples",
           "tokens", "text_tokens", "masked", "random_next")


def sum_statistics(parts: list[dict], max_seq_len: int) -> dict:
    """Statistics of several splits or builds added up (their shares recomputed)."""
    totals = {key: sum(p.get(key, 0) for p in parts) for key in COUNTS}
    totals["replacements"] = {key: sum(p["replacements"][key] for p in parts) for key in REPLACEMENT_NAMES}
    totals["length_counts"] = np.sum([p["length_counts"] for p in parts], axis=0).tolist()
    return with_shares(totals, max_seq_len)


def with_shares(counts: dict, max_seq_len: int) -> dict:
    masked = max(counts["masked"], 1)
    examples = max(counts["examples"], 1)
    lengths = np.asarray(counts["length_counts"])
    edges = np.linspace(0, max_seq_len, HISTOGRAM_BINS + 1).round().astype(int)
    histogram = [int(lengths[lo + 1 if i else 0:hi + 1].sum()) for i, (lo, hi) in enumerate(zip(edges, edges[1:]))]
    return {
        **counts,
        "masked_share": counts["masked"] / max(counts["text_tokens"], 1),  # of the non-special tokens
        "replacement_shares": {key: value / masked for key, value in counts["replacements"].items()},
        "nsp_random_share": counts["random_next"] / examples,
        "single_segment_share": counts["single_segment_documents"] / max(counts["documents"], 1),
        "unk_share": counts["unk_tokens"] / max(counts["source_tokens"], 1),
        "mean_length": counts["tokens"] / examples,
        # of the positions of examples padded to max_seq_len (the reader pads to the longest in a batch)
        "padding_share": 1 - counts["tokens"] / (examples * max_seq_len),
        "length_histogram": {"edges": edges.tolist(), "counts": histogram},
    }
