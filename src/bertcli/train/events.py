"""Optional TensorBoard event logging (`--set runtime.tensorboard=true`).

Every record a run appends to metrics.jsonl is also written as scalars `SPLIT/KEY` at its step, so
people who watch runs in TensorBoard see the same numbers. The dependency is optional: a run that
asks for it without the package installed stops before training with one line saying how to get it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from bertcli.errors import UserError

# metrics.jsonl path -> an open SummaryWriter, while a stage has TensorBoard logging switched on
_writers: dict[Path, object] = {}
NOT_SCALARS = ("step", "epoch", "split")


def open_writer(logdir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("runtime.tensorboard=true needs the tensorboard package: pip install 'bertcli[tensorboard]' "
                        "(or pip install tensorboard), or drop the setting")
    return SummaryWriter(log_dir=str(logdir))


@contextlib.contextmanager
def tensorboard(metrics_path: Path, logdir: Path, enabled: bool) -> Iterator[None]:
    """While open, records appended to `metrics_path` also go to TensorBoard events in `logdir`."""
    if not enabled:
        yield
        return
    writer = open_writer(logdir)
    _writers[Path(metrics_path)] = writer
    try:
        yield
    finally:
        _writers.pop(Path(metrics_path), None)
        writer.close()


def log(metrics_path: Path, record: dict) -> None:
    writer = _writers.get(Path(metrics_path))
    if writer is None or "step" not in record:
        return
    split = record.get("split", "train")
    for key, value in record.items():
        if key not in NOT_SCALARS and isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(f"{split}/{key}", value, int(record["step"]))
