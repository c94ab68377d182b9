"""Where and how code runs: device, dtype, threads, seeding, and the console on stderr."""

from __future__ import annotations

import contextlib
import random
import sys
import time

import numpy as np
import torch
from rich.console import Console

from bertcli.errors import UserError

# Progress and messages go to stderr; stdout is kept for data (JSON, ids, embeddings).
console = Console(stderr=True, highlight=False, soft_wrap=True)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"runtime.device={name}: no CUDA device here; use --set runtime.device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"runtime.device={name}: MPS is not available; use --set runtime.device=cpu")
    return device


def configure(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, dtype: str):
    """bf16 autocast when asked for; weights, gradients and optimizer state stay fp32."""
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def progress_mode(setting: str) -> str:
    """rich on a terminal, plain lines when stderr is a pipe or a file, or none."""
    if setting != "auto":
        return setting
    return "rich" if sys.stderr.isatty() else "plain"


class Progress:
    """A Rich bar with loss, tokens/s and ETA on a terminal; plain log lines in a pipe; or nothing."""

    def __init__(self, mode: str, description: str, total: int, start: int = 0):
        self.mode = progress_mode(mode)
        self.description, self.total, self.start = description, total, start
        self.started = time.perf_counter()
        self._bar = None

    def __enter__(self) -> "Progress":
        if self.mode == "rich":
            from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                     TextColumn("eta"), TimeRemainingColumn(), console=console)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.start, status="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def advance(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def update(self, done: int, metrics: dict) -> None:
        status = f"loss {metrics['loss']:.4f}  {metrics.get('tokens_per_s', 0):,.0f} tok/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=done, status=status)
        elif self.mode == "plain":
            elapsed = time.perf_counter() - self.started
            rate = (done - self.start) / elapsed if elapsed > 0 else 0
            eta = (self.total - done) / rate if rate > 0 else 0
            console.print(f"{self.description} step {done}/{self.total}  {status}  "
                          f"lr {metrics['lr']:.2e}  eta {eta:.0f}s")
