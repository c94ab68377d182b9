"""The one training loop, shared by pretrain and finetune.

A stage describes its job with a `TrainJob` (how to get the micro-batches of a step, how to turn a
batch into losses, what to do after a step); the loop owns the optimizer step, the lr schedule,
accumulation, clipping, autocast and loss scaling, skipping non-finite steps, stopping on a signal
or a budget, logging to metrics.jsonl and the progress display.

Under torchrun the model is wrapped in DistributedDataParallel and every rank runs this same loop
on its own slice of each step's batch; rank 0 alone logs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from bertcli.console import Progress
from bertcli.model.heads import at_least_fp32
from bertcli.errors import UserError
from bertcli.runtime import autocast, is_main, peak_memory_mib, sum_over_ranks
from bertcli.train import events
from bertcli.train.schedule import lr_at

Batch = dict[str, torch.Tensor]


@dataclass
class RunState:
    """What a run carries from step to step and through checkpoints (train_state.pt)."""

    step: int = 0  # optimizer steps done
    tokens: int = 0  # non-padding tokens seen, all ranks together
    skipped: int = 0  # steps skipped for a non-finite loss or gradient
    lr_scale: float = 1.0  # lowered each time a run of bad steps rewinds to a checkpoint
    seconds: float = 0.0  # training time so far, across resumes (for a wall-clock budget)
    stopped: str = ""  # why the loop stopped before total_steps ("" when it ran to the end)


@dataclass
class TrainJob:
    total_steps: int
    peak_lr: float
    warmup: int
    grad_clip: float  # 0: no clipping (the norm is still computed and logged)
    log_every: int
    # The micro-batches of optimizer step `step` (0-based), on this rank. A batch may carry a Python
    # int "tokens" (its non-padding tokens); it is counted, then dropped before `losses` sees it.
    micro_batches: Callable[[int], list[Batch]]
    # A micro-batch's share of the step's losses: they are summed over the micro-batches (and the
    # ranks), so each must be scaled by its share of the step (examples, or masked tokens).
    # Must hold "loss"; every entry is logged.
    losses: Callable[[nn.Module, Batch], dict[str, torch.Tensor]]
    after_step: Callable[[int], None]  # called with the number of steps done (evaluate, save)
    metrics_path: Path
    dtype: str = "fp32"
    description: str = "train"
    schedule: str = "linear"
    max_tokens: int = 0  # 0: no token budget
    max_seconds: float = 0.0  # 0: no wall-clock budget
    # Non-finite steps in a row that are skipped before `rewind` is called (0: the first one stops).
    max_bad_steps: int = 0
    # Restore the last checkpoint with a lower lr scale and return its state; None: stop with an error.
    rewind: Callable[[RunState], RunState] | None = None
    stop_requested: Callable[[], bool] = lambda: False  # a signal arrived: save and stop after this step


def train_loop(model: nn.Module, optimizer: torch.optim.Optimizer, job: TrainJob, start: int | RunState,
               progress_mode: str, scaler: torch.amp.GradScaler | None = None) -> RunState:
    """Run optimizer steps from `start` to total_steps (or a budget, or a signal); return the state."""
    state = start if isinstance(start, RunState) else RunState(step=start)
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    tokens, steps_since_log, bad_in_row = 0, 0, 0
    tick = time.perf_counter()
    with Progress(progress_mode if is_main() else "none", job.description, job.total_steps, state.step) as progress:
        while state.step < job.total_steps:
            step_start = time.perf_counter()
            lr = lr_at(state.step, job.peak_lr, job.warmup, job.total_steps, job.schedule) * state.lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            batches = job.micro_batches(state.step)
            step_tokens = sum(count_tokens(batch) for batch in batches)
            out, grad_norm, finite = train_step(model, optimizer, batches, job.losses, job.dtype, job.grad_clip,
                                                scaler)
            state.step += 1
            step_tokens, stop = agree(step_tokens, job.stop_requested(), device)
            state.tokens += step_tokens
            state.seconds += time.perf_counter() - step_start
            if not finite:
                state.skipped, bad_in_row = state.skipped + 1, bad_in_row + 1
                if bad_in_row > job.max_bad_steps:
                    if job.rewind is None:
                        raise UserError(f"loss or gradient became {float(grad_norm)} at step {state.step}, "
                                        f"{bad_in_row} step(s) in a row; nothing of those steps was saved. "
                                        f"Lower optim.lr or use runtime.dtype=fp32, then --resume")
                    state, bad_in_row, sums, steps_since_log = job.rewind(state), 0, {}, 0
                    progress.advance(state.step)
                    continue
            else:
                bad_in_row = 0
                for key, value in out.items():
                    sums[key] = sums.get(key, 0) + value
                sums["grad_norm"] = sums.get("grad_norm", 0) + grad_norm
                steps_since_log += 1
            tokens += step_tokens
            done = state.step
            if (done % job.log_every == 0 or done == job.total_steps) and steps_since_log:
                elapsed = time.perf_counter() - tick
                means = mean_over_ranks(sums, steps_since_log)
                last = {"step": done, "split": "train", **means, "lr": lr,
                        "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0, "tokens": state.tokens,
                        "skipped_steps": state.skipped, "peak_memory_mib": peak_memory_mib(device)}
                if is_main():
                    append_metrics(job.metrics_path, last)
                progress.update(done, last)
                sums, tokens, steps_since_log, tick = {}, 0, 0, time.perf_counter()
            else:
                progress.advance(done)
            job.after_step(done)
            if stop:
                state.stopped = "signal"
            elif job.max_tokens and state.tokens >= job.max_tokens:
                state.stopped = "tokens"
            elif job.max_seconds and state.seconds >= job.max_seconds:
                state.stopped = "time"
            if state.stopped:
                break
    return state


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[Batch],
               losses: Callable[[nn.Module, Batch], dict[str, torch.Tensor]], dtype: str, grad_clip: float,
               scaler: torch.amp.GradScaler | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
    """Forward and backward over the micro-batches, then one optimizer step if the loss and the gradient
    are finite. Returns this rank's summed losses, the gradient norm, and whether the step was applied.

    The finiteness check is the step's one host sync: it must come before the optimizer applies the
    update, so that a bad batch leaves weights and moments untouched.
    """
    device = next(model.parameters()).device
    # DDP averages gradients over ranks, but each rank's losses are already its share of the step's.
    ranks = dist.get_world_size() if dist.is_initialized() else 1
    sums: dict[str, torch.Tensor] = {}
    for i, batch in enumerate(batches):
        last = i == len(batches) - 1
        quiet = model.no_sync() if isinstance(model, DistributedDataParallel) and not last else contextlib.nullcontext()
        with quiet:
            with autocast(device, dtype):
                out = losses(model, batch)
            loss = out["loss"] * ranks
            (scaler.scale(loss) if scaler is not None else loss).backward()
        for key, value in out.items():
            sums[key] = sums.get(key, 0) + at_least_fp32(value.detach())
    if scaler is not None:
        scaler.unscale_(optimizer)
    parameters = [p for p in model.parameters() if p.grad is not None]
    if grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
    if scaler is not None:
        # fp16 overflow is the scaler's business (it skips and lowers the scale); only a bad loss counts.
        finite = bool(torch.isfinite(sums["loss"]))
        scaler.step(optimizer)
        scaler.update()
    else:
        finite = bool(torch.isfinite(torch.stack([sums["loss"], grad_norm.float()])).all())
        if finite:
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return sums, grad_norm.detach().float(), finite


def count_tokens(batch: Batch) -> int:
    if "tokens" in batch:
        return int(batch.pop("tokens"))
    return int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0


def agree(tokens: int, stop: bool, device: torch.device) -> tuple[int, bool]:
    """All ranks' tokens of the step, and whether any rank was asked to stop (one small all-reduce)."""
    if not dist.is_initialized():
        return tokens, stop
    # Packed in one number, so that it is one all-reduce: the stop votes in the low bits.
    packed = sum_over_ranks(tokens * 1024 + int(stop), device)
    return packed // 1024, packed % 1024 > 0


def mean_over_ranks(sums: dict[str, torch.Tensor], steps: int) -> dict[str, float]:
    """Per-step means of the logged sums; losses add up over ranks (each holds its share)."""
    names = list(sums)
    values = torch.stack([sums[k].float() for k in names]) / steps
    if dist.is_initialized():
        shares = torch.tensor([k != "grad_norm" for k in names], device=values.device)
        dist.all_reduce(values)
        values = torch.where(shares, values, values / dist.get_world_size())  # the norm is the same everywhere
    return dict(zip(names, values.tolist()))


def append_metrics(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    events.log(path, record)


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop what a stopped run logged after the checkpoint it resumes from."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= step]
    tmp = path.with_name(path.name + ".tmp")  # replaced in one rename: a kill here loses nothing
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    os.replace(tmp, path)


def _step_of(line: str) -> float:
    """The step of a metrics line; a line cut short by a killed run counts as past every step."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf
