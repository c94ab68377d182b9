"""Classification metrics computed from label arrays, without extra dependencies."""

from __future__ import annotations

import math

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions == labels).mean()) if len(labels) else 0.0


def f1_binary(predictions: np.ndarray, labels: np.ndarray, positive: int = 1) -> float:
    tp = int(((predictions == positive) & (labels == positive)).sum())
    fp = int(((predictions == positive) & (labels != positive)).sum())
    fn = int(((predictions != positive) & (labels == positive)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def f1_macro(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    return float(np.mean([f1_binary(predictions, labels, c) for c in range(num_labels)]))


def matthews(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> float:
    """Matthews correlation (the multi-class R_K of Gorodkin 2004; the usual MCC for 2 classes)."""
    confusion = np.zeros((num_labels, num_labels), dtype=np.float64)
    np.add.at(confusion, (labels, predictions), 1)
    t, p = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = np.trace(confusion), confusion.sum()
    denominator = math.sqrt((total**2 - (p**2).sum()) * (total**2 - (t**2).sum()))
    return float((correct * total - (t * p).sum()) / denominator) if denominator else 0.0


def classification_metrics(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> dict[str, float]:
    """accuracy, F1 (of label 1 for two classes as GLUE reports it, macro otherwise) and MCC."""
    f1 = f1_binary(predictions, labels) if num_labels == 2 else f1_macro(predictions, labels, num_labels)
    return {"accuracy": accuracy(predictions, labels), "f1": f1,
            "mcc": matthews(predictions, labels, num_labels), "examples": int(len(labels))}
