"""What exact resume needs beyond the weights: optimizer moments, the run's counters, the RNG streams.

The data position is not stored separately: batches are a pure function of (seed, step), so the
step alone says where in the data the run stopped. Each rank's RNG streams (dropout) are stored, so
that a distributed run resumes exactly with the same number of processes. The file is written by us
and read back with `weights_only=True`, so even a tampered file cannot run code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.distributed as dist

from bertcli.errors import UserError
from bertcli.train.loop import RunState

TRAIN_STATE = "train_state.pt"


def rng_streams() -> list[dict[str, torch.Tensor]]:
    """Every rank's RNG streams, gathered on all ranks (a collective under torchrun)."""
    mine = {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else torch.empty(0, dtype=torch.uint8)}
    if not dist.is_initialized():
        return [mine]
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return everyone


def save_train_state(folder: Path, optimizer: torch.optim.Optimizer, run: RunState,
                     rng: list[dict[str, torch.Tensor]], scaler: torch.amp.GradScaler | None = None) -> None:
    state = {
        "run": {k: v for k, v in dataclasses.asdict(run).items() if k != "stopped"},
        "step": run.step,
        "optimizer": optimizer.state_dict(),
        "rng": rng,
        "world_size": len(rng),
        "scaler": scaler.state_dict() if scaler is not None else {},
    }
    torch.save(state, folder / TRAIN_STATE)


def load_train_state(folder: Path, optimizer: torch.optim.Optimizer, rank: int = 0, world_size: int = 1,
                     scaler: torch.amp.GradScaler | None = None) -> RunState:
    """Restore optimizer and this rank's RNG streams from `folder`; return the run's counters."""
    path = folder / TRAIN_STATE
    if not path.is_file():
        raise UserError(f"{folder}: no {TRAIN_STATE}, so this checkpoint cannot be resumed; "
                        f"start a new run with --init-from {folder}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: torch raises several types
        raise UserError(f"{path}: cannot read the training state ({type(exc).__name__}); "
                        f"resume from an earlier steps/ checkpoint")
    saved_world = state.get("world_size", 1)
    if saved_world != world_size:
        raise UserError(f"{folder}: saved by {saved_world} process(es), resumed with {world_size}; each "
                        f"process has its own dropout random stream, so only the same count continues "
                        f"exactly: launch with torchrun --nproc_per_node {saved_world} (in all) or start a "
                        f"new run with --init-from {folder}")
    optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"][rank] if "rng" in state else {"torch": state["torch_rng"], "cuda": torch.empty(0)}
    torch.set_rng_state(rng["torch"])
    if len(rng["cuda"]) and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return RunState(**state.get("run", {"step": int(state["step"])}))
