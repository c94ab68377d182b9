"""Worker processes for corpus building: an ordered, bounded parallel map (or the same in-process).

Results come back in task order, so output never depends on the number of workers; a bounded
number of tasks is in flight, so a streamed input is never read far ahead of the results
(Pool.imap would draw every task from its iterator at once).
"""

from __future__ import annotations

import collections
import multiprocessing
from typing import Callable, Iterable, Iterator

# Per-process state of the worker functions, set by the initializer (in each worker, or here).
state: dict = {}
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class Workers:
    def __init__(self, workers: int, initializer: Callable, initargs: tuple):
        self.workers, self.initializer, self.initargs = workers, initializer, initargs
        self._pool = None

    def __enter__(self) -> "Workers":
        if self.workers == 1:
            self.initializer(*self.initargs)
        else:
            # forkserver, not fork: a fork copies the parent's threads' locks in whatever state they
            # are (a progress display, a test runner), and a worker could wait on one forever. The
            # server imports the workers' module once and each worker starts as a fork of it, where
            # every worker would otherwise import it again (numpy and all: about 0.4 s each).
            context = multiprocessing.get_context(START_METHOD)
            if START_METHOD == "forkserver":
                context.set_forkserver_preload([self.initializer.__module__])
            self._pool = context.Pool(self.workers, self.initializer, self.initargs)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] else self._pool.close()
            self._pool.join()
        state.clear()

    def map(self, function: Callable, tasks: Iterable) -> Iterator:
        """function(task) for each task, in order, with at most four tasks per worker in flight.
        (Results are taken in order, so a slow task holds back the ones after it: with two per
        worker, a timeline of a 2-worker build showed both workers waiting on such tasks.)"""
        if self._pool is None:
            yield from map(function, tasks)
            return
        pending: collections.deque = collections.deque()
        for task in tasks:
            pending.append(self._pool.apply_async(function, (task,)))
            if len(pending) >= 4 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def submit(self, function: Callable, tasks: list) -> Callable[[], list]:
        """Start function(task) for every task now and return a function that waits for the results,
        in order; the caller goes on meanwhile. In-process, the work is done when the results are
        asked for."""
        if self._pool is None:
            return lambda: [function(task) for task in tasks]
        started = [self._pool.apply_async(function, (task,)) for task in tasks]
        return lambda: [result.get() for result in started]
