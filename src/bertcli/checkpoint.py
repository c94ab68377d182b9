"""Checkpoint folders: safetensors weights, the architecture, the task's heads, and the tokenizer.

A checkpoint folder (a run's `final/`, `best/` or `steps/step-NNNNNNNN/`) holds:
  model.safetensors   weights under bertcli's names (`bert.*` encoder, `mlm.*`, `nsp.*`, `classifier.*`)
  model.json          {"config": BertConfig, "task": ..., "heads": [...], "labels": [...]}
  tokenizer/          the tokenizer the model was trained with
  manifest.json       kind "checkpoint"
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from bertcli import artifacts
from bertcli.errors import UserError
from bertcli.hf.folders import refuse_transformers_folder
from bertcli.model import BertConfig, BertEncoder, BertForPretraining
from bertcli.model.electra import ElectraForPretraining
from bertcli.tokenizer import Tokenizer, load_tokenizer

WEIGHTS = "model.safetensors"
MODEL_JSON = "model.json"
TOKENIZER_DIR = "tokenizer"
ENCODER_PREFIX = "bert."


@dataclass
class Checkpoint:
    folder: Path
    config: BertConfig
    task: str  # "pretraining" (MLM + NSP heads), "encoder" (no head), "cls"
    heads: list[str]
    labels: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights, after checking them against the checksum written with them."""
        path = self.folder / WEIGHTS
        data = path.read_bytes()
        expected = (artifacts.read_manifest(self.folder) or {}).get("weights_sha256")
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise UserError(f"{path}: checksum differs from the one in {artifacts.MANIFEST}; the file was "
                            f"damaged or replaced, use another checkpoint")
        try:
            return load(data)
        except (SafetensorError, OSError) as exc:
            raise UserError(f"{path}: cannot read weights ({exc}); the file is damaged, use another checkpoint")

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The encoder's weights alone: pretraining heads are never carried into a task."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(ENCODER_PREFIX)}

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.folder / TOKENIZER_DIR)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder itself, or a run folder (its best/ if it has one, else its final/)."""
    path = Path(path)
    artifacts.refuse_staging(path)
    if not path.exists():
        raise UserError(f"{path}: not found; expected a checkpoint or run folder from "
                        f"`bertcli pretrain`, `bertcli finetune` or `bertcli convert`")
    for candidate in (path, path / "best", path / "final"):
        if (candidate / MODEL_JSON).is_file():
            return candidate
    manifest = artifacts.read_manifest(path)
    if manifest and manifest.get("kind") == "pretrain-run":
        raise UserError(f"{path}: this run has no final/ checkpoint yet; pass one of its steps/step-* "
                        f"folders or finish it with `bertcli pretrain --resume`")
    if not manifest:
        refuse_transformers_folder(path, "checkpoint")
    kind = f" (a {manifest['kind']} folder)" if manifest else ""
    raise UserError(f"{path}: not a checkpoint{kind}; expected a run folder or its final/ "
                    f"from `bertcli pretrain`, `bertcli finetune` or `bertcli convert`")


def load_checkpoint(path: str | Path) -> Checkpoint:
    folder = resolve_checkpoint(path)
    try:
        meta = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))
        config = BertConfig.from_dict(meta["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{folder / MODEL_JSON}: damaged model description ({exc}); use another checkpoint")
    if not (folder / WEIGHTS).is_file():
        raise UserError(f"{folder}: no {WEIGHTS}; the checkpoint is incomplete, use another one")
    ckpt = Checkpoint(folder, config, meta.get("task", "encoder"), meta.get("heads", []),
                      meta.get("labels", []), meta.get("extra", {}))
    tokenizer = ckpt.tokenizer()
    if tokenizer.vocab_size > config.vocab_size:
        raise UserError(f"{folder}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
                        f"{config.vocab_size} embeddings; the tokenizer does not belong to this model")
    return ckpt


def save_checkpoint(folder: Path, state: dict[str, torch.Tensor], config: BertConfig, task: str,
                    heads: list[str], tokenizer: Tokenizer, labels: list[str] | None = None,
                    extra: dict[str, Any] | None = None, run_config: dict[str, Any] | None = None) -> None:
    """Write a complete checkpoint into `folder`, which should be a staging folder (see artifacts)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    save_file(tensors, str(folder / WEIGHTS))
    meta = {"config": config.to_dict(), "task": task, "heads": heads, "labels": labels or [],
            "extra": extra or {}}
    artifacts.atomic_write_text(folder / MODEL_JSON, json.dumps(meta, indent=2) + "\n")
    tokenizer.copy_to(folder / TOKENIZER_DIR)
    artifacts.write_manifest(folder, "checkpoint", run_config or {}, task=task,
                             weights_sha256=artifacts.sha256_file(folder / WEIGHTS))


def load_pretraining_model(ckpt: Checkpoint) -> BertForPretraining | ElectraForPretraining:
    """A pretraining checkpoint's whole model, heads included, as it was trained (BERT's MLM/NSP, or
    ELECTRA's generator and discriminator, whose shapes model.json's extra records)."""
    if "discriminator" in ckpt.heads:
        try:
            generator = BertConfig.from_dict(ckpt.extra["generator"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{ckpt.folder / MODEL_JSON}: an ELECTRA checkpoint without a valid generator shape "
                            f"({exc}); use another checkpoint")
        model = ElectraForPretraining(ckpt.config, generator, float(ckpt.extra.get("discriminator_weight", 50.0)))
    else:
        model = BertForPretraining(ckpt.config)
    model.load_state_dict(ckpt.state_dict())
    return model


def load_encoder(ckpt: Checkpoint) -> BertEncoder:
    """The checkpoint's encoder alone (no task or pretraining head), in eval mode."""
    encoder = BertEncoder(ckpt.config)
    state = {k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()}
    encoder.load_state_dict(state)  # strict: every encoder weight comes from the checkpoint
    return encoder.eval()
