"""Which examples each optimizer step sees."""

from __future__ import annotations

import numpy as np


class EpochBatches:
    """Step -> example indices, as a pure function of (seed, step): the data position needs no state.

    Each pass over the corpus is a fresh permutation drawn from (seed, epoch).
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = num_examples, batch_size, seed
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> np.ndarray:
        positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        out = np.empty_like(positions)
        for i, position in enumerate(positions):
            epoch, offset = divmod(int(position), self.n)
            if epoch != self._epoch:
                self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
            out[i] = self._order[offset]
        return out

    def epochs(self, step: int) -> np.ndarray:
        """The pass over the corpus each of step's examples belongs to (it picks dynamic masks)."""
        return np.arange(step * self.batch_size, (step + 1) * self.batch_size) // self.n


class WholeEpochBatches:
    """Step -> example indices where every epoch is exactly one pass, its last batch possibly
    smaller, so that "after epoch k" means every example seen k times (fine-tuning's dev checks)."""

    def __init__(self, num_examples: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = num_examples, batch_size, seed
        self.steps_per_epoch = -(-num_examples // batch_size)
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._order[k * self.batch_size:(k + 1) * self.batch_size]


class LengthGroupedBatches(WholeEpochBatches):
    """WholeEpochBatches whose batches hold examples of similar length, so little compute goes to
    padding: each epoch's permutation is cut into chunks of `group` batches, each chunk is sorted
    by length and cut into batches, and the batches are shuffled (the "bucketing" of Hugging Face's
    group_by_length and fairseq). Every example is still seen once per epoch."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, group: int = 50):
        super().__init__(len(lengths), batch_size, seed)
        self.lengths, self.group = np.asarray(lengths), group
        self._batches: list[np.ndarray] = []

    def indices(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.n)
            size = self.group * self.batch_size
            chunks = [order[i:i + size] for i in range(0, self.n, size)]
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")] for c in chunks])
            batches = [order[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)]
            self._batches = [batches[i] for i in rng.permutation(len(batches))]
            self._epoch = epoch
        return self._batches[k]
