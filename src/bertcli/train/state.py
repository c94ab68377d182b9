"""What exact resume needs beyond the weights: optimizer moments, the step, and the RNG streams.

The data position is not stored separately: batches are a pure function of (seed, step), so the
step alone says where in the data the run stopped. The file is written by us and read back with
`weights_only=True`, so even a tampered file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bertcli.errors import UserError

TRAIN_STATE = "train_state.pt"


def save_train_state(folder: Path, optimizer: torch.optim.Optimizer, step: int) -> None:
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(state, folder / TRAIN_STATE)


def load_train_state(folder: Path, optimizer: torch.optim.Optimizer) -> int:
    """Restore optimizer and RNG streams from `folder`; return the step to continue from."""
    path = folder / TRAIN_STATE
    if not path.is_file():
        raise UserError(f"{folder}: no {TRAIN_STATE}, so this checkpoint cannot be resumed; "
                        f"start a new run with --init-from {folder}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: torch raises several types
        raise UserError(f"{path}: cannot read the training state ({type(exc).__name__}); "
                        f"resume from an earlier steps/ checkpoint")
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])
