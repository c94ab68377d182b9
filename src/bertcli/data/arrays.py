"""Ragged arrays (many variable-length rows stored as one flat array plus offsets) and their gathers."""

from __future__ import annotations

import numpy as np


def range_indices(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Indices of the ranges [starts[r], stops[r]) laid end to end, without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(stops, dtype=np.int64) - starts
    ends = np.cumsum(lengths)
    # output position k of range r holds starts[r] + (k - where range r begins in the output)
    return np.arange(ends[-1] if len(ends) else 0, dtype=np.int64) - np.repeat(ends - lengths - starts, lengths)


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """(N + 1,) int64 offsets: row r is flat[offsets[r]:offsets[r + 1]]."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def take_rows(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The given rows of a ragged array, as a new flat array and its lengths."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, stops = offsets[rows], offsets[rows + 1]
    return flat[range_indices(starts, stops)], stops - starts
