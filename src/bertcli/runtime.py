"""Where and how code runs: device, dtype, threads, seeding."""

from __future__ import annotations

import contextlib
import os
import platform
import random

import numpy as np
import torch

from bertcli.console import console  # noqa: F401  (stages import it from here too)
from bertcli.errors import UserError


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


def hardware(device: torch.device) -> dict:
    """What a run ran on, for its manifest and report (speed figures mean little without it)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine() or device.type
    return {"device": device.type, "name": name, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}
