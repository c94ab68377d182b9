"""Assemble the next step's batches while the current step computes."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class Prefetcher:
    """Wraps `micro_batches(step)`: each call also starts building step + 1 in a background thread.

    Batch assembly is numpy and memory-map reads that release the GIL, so it overlaps the step's
    forward and backward; on CUDA it also pins and starts the host-to-device copies early. Steps are
    a pure function of the step number, so asking for another step (a rewind) just builds that one.
    """

    def __init__(self, build: Callable[[int], list]):
        self.build = build
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self.ahead: tuple[int, Future] | None = None

    def __call__(self, step: int) -> list:
        if self.ahead is not None and self.ahead[0] == step:
            batches = self.ahead[1].result()
        else:
            batches = self.build(step)
        self.ahead = (step + 1, self.pool.submit(self.build, step + 1))
        return batches
