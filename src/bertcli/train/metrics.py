"""Task metrics as the field reports them, without extra dependencies.

Each is checked against the reference implementation in tests/test_metrics.py: scikit-learn
(accuracy, F1, MCC), scipy (Pearson, Spearman), seqeval (entity-level P/R/F1) and the official
SQuAD v1.1 script's normalisation (as transformers ships it).
"""

from __future__ import annotations

import collections
import math
import re
import string

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


# ----------------------------------------------------------------------------- regression (STS-B)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator else 0.0


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span (as scipy.stats.rankdata)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2  # mean of ranks start+1 .. end
            start = end
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for the 0/1 `labels`: the probability that a random
    positive scores above a random negative, ties counting half (Mann-Whitney U from average ranks,
    as scikit-learn's roc_auc_score). 0.5 when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return 0.5
    ranks = average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def regression_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    predictions, targets = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
    return {"pearson": pearson(predictions, targets), "spearman": spearman(predictions, targets),
            "mse": float(((predictions - targets) ** 2).mean()) if len(targets) else 0.0,
            "examples": int(len(targets))}


# ----------------------------------------------------------------------------- entities (CoNLL)


def _split_tag(tag: str) -> tuple[str, str]:
    if tag in ("O", ""):
        return "O", "_"
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind else (prefix, "_")


def entity_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) word spans, by conlleval's chunk rules (seqeval's default mode).

    Reads IOB1 and IOB2 alike (and IOBES): a chunk starts at B-/S-, at an I-/E- after O or after a
    chunk of another type; it ends before O, B-, S-, a change of type, or after E-/S-.
    """
    spans, start, prev, prev_kind = [], None, "O", "_"
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split_tag(tag)
        ends = prev in ("E", "S") or (prev in ("B", "I") and prefix in ("B", "S", "O")) \
            or (prev != "O" and prev_kind != kind)
        if ends and start is not None:
            spans.append((prev_kind, start, i - 1))
            start = None
        begins = prefix in ("B", "S") or (prev in ("E", "S", "O") and prefix in ("E", "I")) \
            or (prefix != "O" and prev_kind != kind)
        if begins:
            start = i
        prev, prev_kind = prefix, kind
    return spans


def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro-averaged entity precision, recall and F1 (a predicted entity counts when its type and
    both boundaries match a gold one), plus token accuracy."""
    correct = n_gold = n_pred = tokens = right = 0
    for true_tags, pred_tags in zip(gold, predicted):
        true_spans, pred_spans = set(entity_spans(true_tags)), set(entity_spans(pred_tags))
        correct += len(true_spans & pred_spans)
        n_gold += len(true_spans)
        n_pred += len(pred_spans)
        tokens += len(true_tags)
        right += sum(t == p for t, p in zip(true_tags, pred_tags))
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": right / tokens if tokens else 0.0,
            "entities": n_gold, "examples": len(gold)}


# ----------------------------------------------------------------------------- SQuAD v1.1


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalisation: lower case, drop punctuation, drop a/an/the,
    collapse whitespace (in that order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def answer_f1(prediction: str, gold: str) -> float:
    predicted, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(predicted) & collections.Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: list[str], golds: list[list[str]]) -> dict[str, float]:
    """Exact match and F1 in percent, each the best over an example's gold answers (as the official
    evaluate-v1.1.py prints them)."""
    exact = f1 = 0.0
    for prediction, answers in zip(predictions, golds):
        exact += max(float(normalize_answer(prediction) == normalize_answer(a)) for a in answers)
        f1 += max(answer_f1(prediction, a) for a in answers)
    n = max(len(predictions), 1)
    return {"exact_match": 100 * exact / n, "f1": 100 * f1 / n, "examples": len(predictions)}
