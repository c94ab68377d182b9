"""The learning-rate schedule as a pure function of the step: linear warmup, then a decay."""

from __future__ import annotations

import math

SCHEDULES = ("linear", "cosine", "constant")


def warmup_steps(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    """Explicit warmup_steps win; -1 means a share of the run (BERT used 10k of 1M steps)."""
    if warmup_steps >= 0:
        return min(warmup_steps, total_steps)
    return int(round(warmup_ratio * total_steps))


def lr_at(step: int, peak_lr: float, warmup: int, total: int, schedule: str = "linear") -> float:
    """lr for optimizer step `step` (0-based): rises to peak over `warmup` steps, then
    linear: falls to 0 at `total` (BERT); cosine: half a cosine to 0 at `total`; constant: stays.

    The first step already gets peak/warmup (not 0), so no step is spent at lr 0. The decay runs
    from the peak at the end of warmup, as Hugging Face's linear schedule; Google's optimization.py
    decays from step 0 and lets the warmup override it, so its peak is a little lower.
    """
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    if total <= warmup or schedule == "constant":
        return peak_lr
    remaining = max(0.0, (total - step) / (total - warmup))  # 1 at the end of warmup, 0 at total
    if schedule == "cosine":
        return peak_lr * 0.5 * (1.0 - math.cos(math.pi * remaining))
    if schedule == "linear":
        return peak_lr * remaining
    raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
