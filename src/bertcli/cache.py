"""bertcli's cache folder: what can be rebuilt from inputs, kept to save the time of rebuilding it
(corpus verification records, ONNX graphs of checkpoints). Never inside an input folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$BERTCLI_CACHE, else $XDG_CACHE_HOME/bertcli, else ~/.cache/bertcli."""
    if os.environ.get("BERTCLI_CACHE"):
        return Path(os.environ["BERTCLI_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bertcli"
