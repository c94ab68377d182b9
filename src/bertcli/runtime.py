"""Where and how code runs: device, dtype, threads, seeding."""

from __future__ import annotations

import contextlib
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


def quantize_linear(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of the linear layers (int8 weights, activations quantised per batch),
    on CPU: the opt-in fast path of embed and predict. Results move slightly; the default stays fp32."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks these kernels deprecated; they are what runs fast on CPU
        return torch.ao.quantization.quantize_dynamic(model.cpu(), {torch.nn.Linear}, dtype=torch.qint8)
