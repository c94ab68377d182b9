"""Reading a run's metrics.jsonl, for every reader (report, inspect, bench scripts), one way.

A run appends one JSON record per line (train/loop.py); a reader may find the last line cut short,
because the run is still writing it or was killed mid-write: that line is skipped and the read is
reported as partial. A damaged line anywhere else is an error naming its line.
"""

from __future__ import annotations

import json
from pathlib import Path

from bertcli.errors import UserError


def read_metrics(path: Path) -> tuple[list[dict], bool]:
    """The records of a metrics.jsonl; a last line cut short (a run still writing, or killed) is
    skipped and reported as partial. A damaged line elsewhere is an error naming its line."""
    if not path.is_file():
        return [], False
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records, partial = [], False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), (int, float)):
                raise ValueError("no step")
        except ValueError:
            if number >= len(lines) - 1 and not any(rest.strip() for rest in lines[number:]):
                partial = True  # the writer had not finished this line
                continue
            raise UserError(f"{path}:{number}: not a metrics record ({line[:40]!r}); the file is damaged, "
                            f"remove that line to report the rest")
        records.append(record)
    return records, partial


def last_record(path: Path) -> dict | None:
    """The newest complete record, or None when there is none yet."""
    records, _ = read_metrics(path)
    return records[-1] if records else None
