"""Worker processes for corpus building: an ordered, bounded parallel map (or the same in-process).

Results come back in job order, so output never depends on the number of workers; a bounded
number of jobs is in flight, so a streamed input is never read far ahead of the results
(Pool.imap would draw every job from its iterator at once).

Tasks and results travel as files in a spool folder, and the pool's pipes carry only their
names. A pipe moves 64 KB per turn of the two processes, and with both cores busy a
megabyte of examples took up to a third of a second, the worker waiting (a timeline of the 2-worker
build-corpus, experiments/corpus_timeline.py); a file is written in one call and read back from the
page cache. The files are this run's own, written by its processes into a folder it made, the
same bytes the pipe would carry.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

# Per-process state of the worker functions, set by the initializer (in each worker, or here).
state: dict = {}
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def start_fork_server(module: str) -> None:
    """Start the server that forks the workers, importing `module` (the workers' functions), if it
    is not running yet. The CLI calls it as soon as build-corpus is known to run, so that the
    server's imports overlap the command's own start-up instead of delaying the first job
    (experiments/corpus_timeline.py shows the pool's start)."""
    if START_METHOD == "forkserver":
        from multiprocessing import forkserver

        multiprocessing.get_context(START_METHOD).set_forkserver_preload([module])
        forkserver.ensure_running()


class Workers:
    def __init__(self, workers: int, initializer: Callable, initargs: tuple, spool: Path):
        self.workers, self.initializer, self.initargs, self.spool = workers, initializer, initargs, spool
        self._pool = None
        self._names = itertools.count()

    def __enter__(self) -> "Workers":
        if self.workers == 1:
            self.initializer(*self.initargs)
        else:
            # forkserver, not fork: a fork copies the parent's threads' locks in whatever state they
            # are (a progress display, a test runner), and a worker could wait on one forever. The
            # server imports the workers' module once and each worker starts as a fork of it, where
            # every worker would otherwise import it again (numpy and all: about 0.4 s each).
            start_fork_server(self.initializer.__module__)
            self._pool = multiprocessing.get_context(START_METHOD).Pool(self.workers, self.initializer, self.initargs)
            self.spool.mkdir()
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] else self._pool.close()
            self._pool.join()
            shutil.rmtree(self.spool, ignore_errors=True)
        state.clear()

    def map(self, function: Callable, jobs: Iterable) -> Iterator:
        """function(job) for each job, in order, with at most four jobs per worker in flight.
        (Results are taken in order, so a slow job holds back the ones after it: with two per
        worker, a timeline of a 2-worker build showed both workers waiting on such jobs.)"""
        if self._pool is None:
            yield from map(function, jobs)
            return
        pending: collections.deque = collections.deque()
        for job in jobs:
            pending.append(self._start(function, job))
            if len(pending) >= 4 * self.workers:
                yield pending.popleft()()
        while pending:
            yield pending.popleft()()

    def submit(self, function: Callable, jobs: list) -> Callable[[], list]:
        """Start function(job) for every job now and return a function that waits for the results,
        in order; the caller goes on meanwhile. In-process, the work is done when the results are
        asked for."""
        if self._pool is None:
            return lambda: [function(job) for job in jobs]
        started = [self._start(function, job) for job in jobs]
        return lambda: [result() for result in started]

    def _start(self, function: Callable, job) -> Callable:
        """Start function(job) in a worker; returns a function that waits for the result."""
        path = str(self.spool / f"{next(self._names):09d}")
        _dump(job, path + ".job")
        started = self._pool.apply_async(_run_spooled, (function, path))
        return lambda: _load(started.get())


def _run_spooled(function: Callable, path: str) -> str:
    """In a worker: the job from path.job, its result to path.result."""
    _dump(function(_load(path + ".job")), path + ".result")
    return path + ".result"


def _dump(value, path: str) -> None:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: str):
    with open(path, "rb") as file:
        value = pickle.load(file)
    os.unlink(path)
    return value
