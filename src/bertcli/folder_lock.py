"""One writer per output folder: an advisory lock that the kernel drops when its process ends.

Every command that writes an `--out` (and `pretrain --resume`) takes the lock of that folder before
it writes anything; a second writer is told which process holds it and leaves the folder alone.
The lock is `flock` on a small file beside the folder, `.NAME.lock` in its parent: beside, not
inside, because most commands build their folder under a staging name and rename it into place at
the end, so the folder itself may not exist while it is being written. `flock` locks belong to the
open file, so a process killed with SIGKILL never leaves a stale lock behind (its file stays, and
the next writer locks it); a command that ends removes its lock file.
Readers (`eval`, `inspect`, `report`'s inputs) never take it.

Under torchrun only rank 0 locks: the other ranks write nothing of their own into `--out`.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
from pathlib import Path
from typing import Callable

from bertcli.errors import UserError

# Locks this process holds: resolved lock-file path -> open descriptor. A command locks a folder
# once; taking it again in the same process (a stage calling another's checks) is a no-op.
_held: dict[Path, int] = {}
_depth = 0


def lock_path(out: str | Path) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}.lock"


def lock_output(out: str | Path, flag: str = "--out") -> None:
    """Hold the writer lock of `out` until the command ends, or raise a one-line UserError naming
    the process that holds it."""
    if os.environ.get("RANK", "0") != "0":
        return
    path = lock_path(out)
    key = path.absolute()
    if key in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise UserError(f"{out}: another bertcli ({holder}) is writing this folder; wait for it to end, "
                            f"or choose another {flag}") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the one that stands now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[key] = fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def release_all() -> None:
    """Drop every lock this process holds (the command is over), removing the lock files: a writer
    that opened one just before it went checks, once locked, that it still stands (_same_file)."""
    for path, fd in _held.items():
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)
    _held.clear()


def writes_output(func: Callable) -> Callable:
    """For a stage's entry point: the locks it takes are released when it returns or raises, so that
    a program (or a test) that runs several commands in one process does not keep them."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _depth
        _depth += 1
        try:
            return func(*args, **kwargs)
        finally:
            _depth -= 1
            if _depth == 0:
                release_all()

    return wrapper
