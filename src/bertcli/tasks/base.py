"""What every task provides: a reader, an encoder of examples, a head, a loss, a metric, and the
mapping of raw model outputs back to predictions people can read.

`finetune`, `eval` and `predict` go through this interface only, so adding a task is a module
here, not a branch in the training loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertcli.tasks.labelled import EncodedExamples
from bertcli.errors import UserError
from bertcli.model import BertConfig, FeatureModel
from bertcli.tokenizer import Tokenizer


@dataclass(frozen=True)
class TaskSettings:
    """What eval and predict need to read and encode data as training did; saved in the checkpoint."""

    max_seq_len: int = 128
    columns: dict[str, str] = field(default_factory=dict)  # cls/regression: text, pair, label columns
    doc_stride: int = 128
    max_query_len: int = 64
    max_answer_len: int = 30
    n_best: int = 20
    mode: str = "finetune"  # or "features"
    layers: str = "last"  # features mode: which layers
    head: str = "linear"  # features mode: linear | bilstm
    lstm_size: int = 256
    scheme: str = ""  # ner: iob1 | iob2, as the training data was tagged
    pooling: str = "cls"  # cls/regression: the sentence feature, cls (pooled [CLS]) or mean

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TaskSettings":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Batchable:
    """A task's data set after encoding: the raw examples, the model inputs, and how they relate."""

    source: Any  # the task's reader output (LabelledExamples, TaggedSentences, Questions)
    encoded: EncodedExamples


class Task:
    name = "abstract"
    selection_metric = "accuracy"  # the dev metric that picks the best epoch (higher is better)
    shown_metrics: tuple[str, ...] = ()
    per_token = False  # features mode: every token's features, or [CLS]'s
    has_labels = True  # a label set recorded in the checkpoint (cls, ner)

    # ---- data
    def read(self, path: str | Path, settings: TaskSettings, need_labels: bool = True):
        raise NotImplementedError

    def read_lines(self, lines: list[tuple[int, str]], source: str, settings: TaskSettings):
        """`predict` input: (line number, text) pairs, one example each."""
        raise NotImplementedError

    def label_set(self, data) -> list[str]:
        return []

    def settings_from(self, data, settings: TaskSettings) -> TaskSettings:
        """Settings learnt from the training data (columns used, tag scheme)."""
        return settings

    def encode(self, data, tokenizer: Tokenizer, settings: TaskSettings, labels: list[str]) -> Batchable:
        raise NotImplementedError

    # ---- model
    def num_outputs(self, labels: list[str]) -> int:
        return len(labels)

    def build_model(self, arch: BertConfig, labels: list[str], settings: TaskSettings,
                    classifier_dropout: float) -> nn.Module:
        raise NotImplementedError

    def build_feature_model(self, arch: BertConfig, labels: list[str], settings: TaskSettings,
                            dropout: float) -> FeatureModel:
        return FeatureModel(arch, self.num_outputs(labels), settings.layers, settings.head, self.per_token,
                            settings.lstm_size, dropout)

    def loss(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    # ---- results
    def metrics(self, data: Batchable, outputs: list[np.ndarray], labels: list[str],
                settings: TaskSettings) -> dict[str, float]:
        raise NotImplementedError

    def predictions(self, data: Batchable, outputs: list[np.ndarray], labels: list[str],
                    settings: TaskSettings) -> list[dict]:
        raise NotImplementedError

    def summary(self, metrics: dict) -> str:
        return "  ".join(f"{k} {metrics[k]:.4f}" for k in self.shown_metrics if k in metrics)


def parse_json_line(text: str, number: int, source: str) -> dict | None:
    """A predict line that starts with "{" is a JSON object; None for a plain-text line."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}:{number}: starts with '{{' but is not valid JSON ({exc.msg}); give one JSON "
                        f"object per line, or plain text")
    if not isinstance(row, dict):
        raise UserError(f"{source}:{number}: expected a JSON object")
    return row


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
