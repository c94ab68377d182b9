"""Where a build-corpus run's wall time goes: every worker task and main-process step stamped.

    PYTHONPATH=src .venv/bin/python experiments/corpus_timeline.py build-corpus --input BOOKS \
        --tokenizer TOK --out OUT --max-seq-len 128 --dupe-factor 5 --workers 2 \
        --set progress=none --input-format lines

Runs the command as `bertcli` would, with stamps around the stage's worker functions (tokenising
a text task, making a block's examples) and its main-process steps (the pool's start, each block
written), then prints, for each worker, when its first task started, when its last ended and how
long it was busy in between, and the main process's steps. Point PYTHONPATH at another revision's
src/ to see that revision (the stage's function names it patches have not changed since 2daeb09).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

EVENTS = "BERTCLI_TIMELINE_DIR"  # where each process writes its stamps (set by main, inherited)
_events: list[tuple[str, float, float]] = []


def _stamp(name: str, function):
    @functools.wraps(function)
    def stamped(*args, **kwargs):
        started = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            _events.append((name, started, time.time()))
            _save()

    return stamped


def _save() -> None:
    with open(Path(os.environ[EVENTS]) / f"{os.getpid()}.txt", "w") as file:
        file.writelines(f"{name} {start:.4f} {end:.4f}\n" for name, start, end in _events)


def _init_worker(*args):
    """The stage's worker initializer, after stamping the worker functions (in the worker)."""
    import bertcli.stages.build_corpus as stage

    stage._tokenize = _stamp("tokenise", stage._tokenize)
    stage._make_examples = _stamp("examples", stage._make_examples)
    # a worker process has the stage unpatched; with one worker the initializer runs here, patched
    return (_ORIGINAL_INIT or stage._init_worker)(*args)


_ORIGINAL_INIT = None


def _patch_main(stage) -> None:
    global _ORIGINAL_INIT
    _ORIGINAL_INIT = stage._init_worker
    stage._init_worker = _init_worker  # pickled by name: the workers import this module
    stage._write = _stamp("write block", stage._write)
    stage.Workers.__enter__ = _stamp("start pool", stage.Workers.__enter__)
    stage.run = _stamp("run", stage.run)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Stamps the stage's functions as soon as the CLI imports it (its imports are part of the timeline)."""

    def find_spec(self, name, path, target=None):
        if name != "bertcli.stages.build_corpus":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch_main(module)

        spec.loader.exec_module = exec_module
        return spec


def report(folder: Path, started: float) -> None:
    processes = {}
    for file in folder.glob("*.txt"):
        processes[file.stem] = [(name, float(a) - started, float(b) - started)
                                for name, a, b in (line.rsplit(" ", 2) for line in file.read_text().splitlines())]
    main = processes.pop(str(os.getpid()), [])
    for name, a, b in sorted(main, key=lambda e: e[1]):
        if name != "write block":
            print(f"main: {name:12} {a:6.2f} - {b:6.2f} s ({b - a:.2f} s)")
    writes = [b - a for name, a, b in main if name == "write block"]
    print(f"main: {len(writes)} blocks written, {sum(writes):.2f} s in all (waiting for their examples included)")
    for pid, events in sorted(processes.items()):
        first, last = min(a for _, a, _ in events), max(b for _, _, b in events)
        busy = sum(b - a for _, a, b in events)
        counts = {name: sum(1 for n, _, _ in events if n == name) for name in ("tokenise", "examples")}
        print(f"worker {pid}: first task {first:.2f} s, last ends {last:.2f} s, busy {busy:.2f} of "
              f"{last - first:.2f} s ({busy / (last - first):.0%}); tasks {counts}")


def run(argv: list[str]) -> None:
    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix="bertcli-timeline-"))
    os.environ[EVENTS] = str(folder)
    sys.meta_path.insert(0, _PatchOnImport())
    from bertcli.cli import main as bertcli

    sys.argv = ["bertcli", *argv]
    try:
        bertcli()
    except SystemExit as exit:
        if exit.code:
            raise
    finally:
        _save()
    print(f"whole command {time.time() - started:.2f} s")
    report(folder, started)


if __name__ == "__main__":
    # run from the module the workers import by name (corpus_timeline, not __main__), so that the
    # stamps and the patched initializer are one module's
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import corpus_timeline

    corpus_timeline.run(sys.argv[1:])
