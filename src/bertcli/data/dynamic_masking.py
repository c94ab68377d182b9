"""Dynamic masking (RoBERTa, Liu et al. 2019, section 4.1): masks drawn each time an example is read.

A corpus built with `masking: dynamic` stores its examples unmasked. The reader masks example i
in epoch e with a generator seeded by (corpus seed, e, i), so the masks are a pure function of
the data position: an exactly resumed run, any number of processes each reading its slice of a
batch, and `bertcli inspect --dump --epoch e` all see the same masks, and every epoch sees new ones.
"""

from __future__ import annotations

import numpy as np

from bertcli.data.masking import Masker
from bertcli.labels import IGNORE_INDEX

_DYNAMIC_STREAM = 4  # beside build-corpus's own streams (hold-out, pairs, shuffle, packing)


def example_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _DYNAMIC_STREAM, epoch, index])


def mask_batch(batch: dict[str, np.ndarray], indices: np.ndarray, epochs: np.ndarray, masker: Masker,
               seed: int) -> dict[str, np.ndarray]:
    """Mask the unmasked examples of a padded batch in place; fill mlm_positions / mlm_labels."""
    input_ids, lengths = batch["input_ids"], batch["attention_mask"].sum(axis=1)
    predictions = [masker(input_ids[r, :lengths[r]], example_rng(seed, int(epochs[r]), int(indices[r])))
                   for r in range(len(indices))]
    P = max((len(p.positions) for p in predictions), default=0)
    positions = np.zeros((len(indices), P), dtype=np.int64)
    labels = np.full((len(indices), P), IGNORE_INDEX, dtype=np.int64)
    for r, prediction in enumerate(predictions):
        k = len(prediction.positions)
        positions[r, :k] = prediction.positions
        labels[r, :k] = prediction.labels
    batch["mlm_positions"], batch["mlm_labels"] = positions, labels
    return batch
