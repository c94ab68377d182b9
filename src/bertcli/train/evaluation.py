"""Evaluation passes shared by training (held-out / dev checks) and `bertcli eval`."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertcli.model.electra import ElectraForPretraining
from bertcli.model.heads import IGNORE_INDEX
from bertcli.runtime import autocast
from bertcli.train.metrics import roc_auc


def to_device(batch: dict[str, np.ndarray | None], device: torch.device) -> dict[str, torch.Tensor | None]:
    """numpy -> tensors on `device`; on CUDA through pinned memory, so the copies run asynchronously."""
    def move(value: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor
    return {key: None if value is None else move(value) for key, value in batch.items()}


def chunks(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


@torch.no_grad()
def evaluate_pretraining(model: nn.Module, reader, batch_size: int, max_examples: int = 0,
                         dtype: str = "fp32") -> dict[str, float]:
    """MLM accuracy and perplexity over masked positions, NSP accuracy, on a corpus split."""
    model.eval()
    device = next(model.parameters()).device
    n = len(reader) if max_examples <= 0 else min(max_examples, len(reader))
    mlm_loss = mlm_correct = mlm_count = nsp_loss = nsp_correct = 0.0
    replaced = ReplacedTokenScores()
    electra = isinstance(model, ElectraForPretraining)
    rng = torch.Generator(device).manual_seed(0) if electra else None  # the same samples every evaluation
    for indices in chunks(n, batch_size):
        batch = to_device(reader.batch(indices), device)
        with autocast(device, dtype):
            out = model(**batch, rng=rng) if electra else model(**batch)
        targets = out["mlm_targets"]
        mlm_loss += float(F.cross_entropy(out["mlm_logits"].float(), targets, reduction="sum"))
        mlm_correct += float((out["mlm_logits"].argmax(-1) == targets).sum())
        mlm_count += float((targets != IGNORE_INDEX).sum())
        if "nsp_logits" in out:
            labels = batch["next_sentence_label"]
            nsp_loss += float(F.cross_entropy(out["nsp_logits"].float(), labels, reduction="sum"))
            nsp_correct += float((out["nsp_logits"].argmax(-1) == labels).sum())
        if "disc_logits" in out:
            replaced.collect(out)
    mean_mlm = mlm_loss / max(mlm_count, 1)
    result = {
        "mlm_accuracy": mlm_correct / max(mlm_count, 1),
        "mlm_loss": mean_mlm,
        "perplexity": math.exp(min(mean_mlm, 700.0)),
        "examples": n,
        "masked_tokens": int(mlm_count),
    }
    if electra:  # the MLM figures above are the generator's
        result.update(replaced.metrics())
    elif reader.has_nsp:  # an MLM-only corpus has no next-sentence labels to score
        result.update(nsp_accuracy=nsp_correct / max(n, 1), nsp_loss=nsp_loss / max(n, 1))
    return result


class ReplacedTokenScores:
    """The discriminator's logits and labels at real tokens, gathered over an evaluation, then its
    loss, accuracy, and ROC AUC of replaced against original tokens."""

    def __init__(self):
        self.logits: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def collect(self, out: dict) -> None:
        real = out["real"].bool()
        self.logits.append(out["disc_logits"][real].float().cpu().numpy())
        self.labels.append(out["replaced"][real].cpu().numpy())

    def metrics(self) -> dict[str, float]:
        logits = np.concatenate(self.logits) if self.logits else np.zeros(0, np.float32)
        labels = np.concatenate(self.labels).astype(np.float64) if self.labels else np.zeros(0)
        count = max(len(labels), 1)
        # binary cross-entropy from logits, in a form that does not overflow: max(x, 0) - x y + log(1 + e^-|x|)
        x = logits.astype(np.float64)
        loss = float((np.maximum(x, 0) - x * labels + np.log1p(np.exp(-np.abs(x)))).sum() / count)
        return {"disc_loss": loss, "disc_accuracy": float(((x > 0) == (labels > 0)).sum() / count),
                "disc_auc": roc_auc(x, labels), "replaced_fraction": float(labels.sum() / count)}


@torch.no_grad()
def forward_all(model: nn.Module, encoded, pad_id: int, batch_size: int, dtype: str = "fp32",
                run=None) -> list[np.ndarray]:
    """Each example's raw output, in example order: (L,) for a sequence-level head, (T, L) trimmed
    to the example's length for a token-level one. Batches are formed by length, so short inputs
    do not pay for long ones. `run(model, batch)` replaces `model(**batch)` (cached features)."""
    model.eval()
    device = next(model.parameters()).device
    lengths = encoded.lengths()
    order = np.argsort(lengths, kind="stable")
    results: list[np.ndarray | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        batch = to_device(encoded.batch(indices, pad_id), device)
        inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
        with autocast(device, dtype):
            out = model(**inputs) if run is None else run(model, indices, batch)
        out = out.float().cpu().numpy()
        for row, i in enumerate(indices):
            results[i] = out[row, :lengths[i]] if out.ndim == 3 else out[row]
    return results
