"""The one training loop, shared by pretrain and finetune.

A stage describes its job with a `TrainJob` (how to get the micro-batches of a step, how to turn a
batch into losses, what to do after a step); the loop owns the optimizer step, the lr schedule,
accumulation, clipping, bf16 autocast, logging to metrics.jsonl and the progress display.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bertcli.errors import UserError
from bertcli.console import Progress
from bertcli.runtime import autocast
from bertcli.train import events
from bertcli.train.schedule import lr_at

Batch = dict[str, torch.Tensor]


@dataclass
class TrainJob:
    total_steps: int
    peak_lr: float
    warmup: int
    grad_clip: float  # 0: no clipping
    log_every: int
    micro_batches: Callable[[int], list[Batch]]  # the micro-batches of optimizer step `step` (0-based)
    # A micro-batch's share of the step's losses: they are summed over the micro-batches, so with
    # accumulation each must be scaled by its share of the step (examples, or masked tokens).
    # Must hold "loss"; every entry is logged.
    losses: Callable[[nn.Module, Batch], dict[str, torch.Tensor]]
    after_step: Callable[[int], None]  # called with the number of steps done (evaluate, save)
    metrics_path: Path
    dtype: str = "fp32"
    description: str = "train"


def train_loop(model: nn.Module, optimizer: torch.optim.Optimizer, job: TrainJob, start_step: int,
               progress_mode: str) -> dict[str, float]:
    """Run optimizer steps start_step .. total_steps - 1; return the last logged metrics."""
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    tokens, steps_since_log, last = 0, 0, {}
    tick = time.perf_counter()
    with Progress(progress_mode, job.description, job.total_steps, start_step) as progress:
        for step in range(start_step, job.total_steps):
            lr = lr_at(step, job.peak_lr, job.warmup, job.total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            step_loss = 0.0
            for batch in job.micro_batches(step):
                with autocast(device, job.dtype):
                    out = job.losses(model, batch)
                out["loss"].backward()
                step_loss = step_loss + out["loss"].detach()
                for key, value in out.items():
                    sums[key] = sums.get(key, 0) + value.detach().float()
                tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            # One host sync per step, so that a non-finite loss stops the run before the optimizer
            # applies it and before any checkpoint can hold it.
            if not torch.isfinite(step_loss):
                raise UserError(f"loss became {float(step_loss)} at step {step + 1}; nothing of that step was "
                                f"saved. Lower optim.lr or use runtime.dtype=fp32, then --resume")
            if job.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), job.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps_since_log += 1
            done = step + 1
            if done % job.log_every == 0 or done == job.total_steps:
                elapsed = time.perf_counter() - tick
                last = {"step": done, "split": "train", **{k: float(v) / steps_since_log for k, v in sums.items()},
                        "lr": lr, "tokens_per_s": tokens / elapsed if elapsed > 0 else 0.0}
                append_metrics(job.metrics_path, last)
                progress.update(done, last)
                sums, tokens, steps_since_log, tick = {}, 0, 0, time.perf_counter()
            else:
                progress.advance(done)
            job.after_step(done)
    return last


def append_metrics(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    events.log(path, record)


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop what a stopped run logged after the checkpoint it resumes from."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _step_of(line: str) -> float:
    """The step of a metrics line; a line cut short by a killed run counts as past every step."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf
