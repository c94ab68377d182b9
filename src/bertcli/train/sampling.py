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
