"""A full disk (or an exhausted quota) as the user's problem with a fix, not as a bertcli bug.

The libraries bertcli writes through each say "disk full" their own way: Python raises OSError
with ENOSPC or EDQUOT, torch.save a RuntimeError from its zip writer ("unexpected pos ..."),
safetensors a SafetensorError carrying the OS message, numpy an OSError without errno ("8192
requested and 1024 written"). `is_disk_full` knows them all; `artifacts.staged_folder` turns one
into `DiskFull` after removing what it had staged, so that the folder that was there before (or
a run's earlier checkpoints) is what remains.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from bertcli.errors import UserError

_SIGNS = ("no space left on device", "disk quota exceeded", "unexpected pos", "requested and")


class DiskFull(UserError):
    """One line: the folder, what it needed if known, what is free, and the fix."""

    def __init__(self, out: Path, written: int, free: int | None, needed: int | None = None):
        parts = [f"{human_bytes(written)} written before the disk filled"]
        if needed:
            parts.append(f"about {human_bytes(needed)} needed")
        if free is not None:
            parts.append(f"{human_bytes(free)} free now")
        super().__init__(f"{out}: no space left on device ({', '.join(parts)}); the unfinished {out.name} was "
                         f"removed and what was there before is intact; free space or choose a folder on "
                         f"another disk, then run the command again (a pretraining run: add --resume)")


def is_disk_full(exc: BaseException) -> bool:
    """Is `exc` (or an exception it was raised from) a write that failed for lack of space?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc).lower()
        if any(sign in text for sign in _SIGNS) and not isinstance(exc, UserError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(folder: Path) -> int | None:
    """Free space for an unprivileged writer on the file system that holds `folder` (or its nearest
    existing parent); None when it cannot be asked."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def tree_bytes(folder: Path) -> int:
    total = 0
    for path in Path(folder).rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            pass
    return total


def human_bytes(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
