"""Evaluation passes shared by training (held-out / dev checks) and `bertcli eval`."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bertcli.runtime import autocast
from bertcli.train.metrics import classification_metrics


def to_device(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.ascontiguousarray(value)).to(device, non_blocking=True)
            for key, value in batch.items()}


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
    for indices in chunks(n, batch_size):
        batch = to_device(reader.batch(indices), device)
        with autocast(device, dtype):
            out = model(**batch)
        targets = out["mlm_targets"]
        mlm_loss += float(F.cross_entropy(out["mlm_logits"].float(), targets, reduction="sum"))
        mlm_correct += float((out["mlm_logits"].argmax(-1) == targets).sum())
        mlm_count += targets.numel()
        if "nsp_logits" in out:
            labels = batch["next_sentence_label"]
            nsp_loss += float(F.cross_entropy(out["nsp_logits"].float(), labels, reduction="sum"))
            nsp_correct += float((out["nsp_logits"].argmax(-1) == labels).sum())
    mean_mlm = mlm_loss / max(mlm_count, 1)
    result = {
        "mlm_accuracy": mlm_correct / max(mlm_count, 1),
        "mlm_loss": mean_mlm,
        "perplexity": math.exp(min(mean_mlm, 700.0)),
        "examples": n,
        "masked_tokens": int(mlm_count),
    }
    if reader.has_nsp:  # an MLM-only corpus has no next-sentence labels to score
        result.update(nsp_accuracy=nsp_correct / max(n, 1), nsp_loss=nsp_loss / max(n, 1))
    return result


@torch.no_grad()
def predict_logits(model: nn.Module, encoded, pad_id: int, batch_size: int, dtype: str = "fp32") -> np.ndarray:
    """Logits for every example, batched by length so that little work goes to padding."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(ids) for ids in encoded.input_ids], kind="stable")
    logits = np.zeros((len(encoded), model.num_labels), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        batch = encoded.batch(indices, pad_id)
        batch.pop("labels", None)
        with autocast(device, dtype):
            out = model(**to_device(batch, device))
        logits[indices] = out.float().cpu().numpy()
    return logits


def evaluate_classification(model: nn.Module, encoded, pad_id: int, batch_size: int,
                            dtype: str = "fp32") -> dict[str, float]:
    logits = predict_logits(model, encoded, pad_id, batch_size, dtype)
    return classification_metrics(logits.argmax(-1), encoded.labels, model.num_labels)
