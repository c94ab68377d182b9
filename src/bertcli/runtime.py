"""Where and how code runs: device, dtype, threads, seeding."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import resource
import signal
import threading

import numpy as np
import torch
import torch.distributed as dist

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
    """bf16/fp16 autocast when asked for; weights, gradients and optimizer state stay fp32."""
    if autocast_dtype(dtype) is not None:
        return torch.autocast(device_type=device.type, dtype=autocast_dtype(dtype))
    return contextlib.nullcontext()


def autocast_dtype(dtype: str) -> torch.dtype | None:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)


def slow_dtype_warning(device: torch.device, dtype: str) -> str | None:
    """Why `dtype` will run slower than fp32 here, or None. On a CPU without bf16 dot-product
    instructions (avx512_bf16 or AMX) autocast's bf16 matrix multiplies are emulated, about 10x slower
    than fp32 on a 2-core AVX2 EPYC (bench/RESULTS.md, issue 7)."""
    if device.type != "cpu" or dtype == "fp32":
        return None
    if dtype == "fp16":
        return "runtime.dtype=fp16 is meant for GPUs; on a CPU it is slower than fp32 (use runtime.dtype=fp32)"
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        return None
    return ("runtime.dtype=bf16: this CPU has no bf16 instructions (avx512_bf16/AMX), so bf16 is emulated "
            "and several times slower than fp32; use runtime.dtype=fp32 here")


def warn_if_slow_dtype(device: torch.device, dtype: str) -> None:
    warning = slow_dtype_warning(device, dtype)
    if warning and is_main():
        console.print(f"[yellow]warning:[/yellow] {warning}")


def grad_scaler(device: torch.device, dtype: str) -> torch.amp.GradScaler | None:
    """fp16 needs dynamic loss scaling (its range is too small for raw gradients); bf16 does not."""
    return torch.amp.GradScaler(device.type) if dtype == "fp16" else None


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory so far: allocated tensors on CUDA, the process's peak resident size elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ----------------------------------------------------------------------------- torchrun

def init_distributed(device_setting: str) -> tuple[int, int]:
    """(rank, world size). Under torchrun (WORLD_SIZE in the environment) join the process group:
    NCCL when ranks drive CUDA devices, gloo on CPU. Each rank takes the GPU of its LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    cuda = torch.cuda.is_available() and device_setting in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def sum_over_ranks(value: int, device: torch.device) -> int:
    """`value` summed over all ranks (itself in a single process)."""
    if not dist.is_initialized():
        return value
    on = device if dist.get_backend() == "nccl" else torch.device("cpu")
    total = torch.tensor([value], dtype=torch.int64, device=on)
    dist.all_reduce(total)
    return int(total)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# ----------------------------------------------------------------------------- signals

class StopRequest:
    """SIGTERM or SIGINT asks the run to save a resumable checkpoint after its current step and exit
    (a scheduler's pre-emption becomes a pause). A second signal stops at once, as usual."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def __call__(self) -> bool:
        return self.received is not None

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
            return
        self.received = signum
        console.print(f"[yellow]{signal.Signals(signum).name}:[/] saving a checkpoint after this step, then exiting")


def hardware(device: torch.device) -> dict:
    """What a run ran on, for its manifest and report (speed figures mean little without it)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine() or device.type
    return {"device": device.type, "name": name, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def quantize_linear(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of the linear layers (int8 weights, activations quantised per batch),
    on CPU: the opt-in fast path of embed and predict. Results move; the default stays fp32.

    Weights are quantised per output channel: on all-MiniLM-L6-v2's SST-2 sentence vectors that keeps
    a mean cosine of 0.972 with fp32 (min 0.889) where one scale per matrix gives 0.934 (min 0.804),
    at the same speed (bench/RESULTS.md, issue 8)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks these kernels deprecated; they are what runs fast on CPU
        return torch.ao.quantization.quantize_dynamic(model.cpu(), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                                      dtype=torch.qint8)
