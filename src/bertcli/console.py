"""The console on stderr and the progress display. No torch here, so light commands stay light."""

from __future__ import annotations

import sys
import time

from rich.console import Console

# Progress and messages go to stderr; stdout is kept for data (JSON, ids, embeddings).
console = Console(stderr=True, highlight=False, soft_wrap=True)


def progress_mode(setting: str) -> str:
    """rich on a terminal, plain lines when stderr is a pipe or a file, or none (also under --quiet)."""
    if console.quiet:
        return "none"
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
