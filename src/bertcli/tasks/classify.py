"""Sentence and sentence-pair tasks: `cls` (classes; accuracy, F1, MCC) and `regression`
(one score per example, STS-B; mean-squared error, Pearson, Spearman)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch.nn.functional as F

from bertcli.config import TaskDataConfig
from bertcli.tasks.labelled import LabelledExamples, encode_examples, label_ids, label_names, read_examples
from bertcli.errors import UserError
from bertcli.model import BertForSequenceClassification
from bertcli.tasks.base import Batchable, Task, TaskSettings, parse_json_line, softmax
from bertcli.train.metrics import classification_metrics, regression_metrics


def _data_config(settings: TaskSettings, data: TaskDataConfig | None = None) -> TaskDataConfig:
    if data is not None:
        return data
    columns = {k: v or "none" for k, v in settings.columns.items()}
    return TaskDataConfig(**columns, max_seq_len=settings.max_seq_len)


class SentenceTask(Task):
    per_token = False
    data_config: TaskDataConfig | None = None  # finetune sets the user's column choices

    def read(self, path, settings, need_labels=True):
        return read_examples(path, _data_config(settings, self.data_config), need_labels)

    def settings_from(self, data: LabelledExamples, settings):
        columns = dict(zip(("text_column", "text_pair_column", "label_column"), data.columns))
        return TaskSettings(**{**settings.to_dict(), "columns": columns})

    def read_lines(self, lines, source, settings):
        pair_column = settings.columns.get("text_pair_column")
        texts, pairs = [], []
        for number, line in lines:
            row = parse_json_line(line, number, source)
            if row is not None:
                first = row.get("text", row.get(settings.columns.get("text_column"), None))
                second = row.get("text_pair", row.get(pair_column)) if pair_column else None
                if not isinstance(first, str) or (pair_column and not isinstance(second, str)):
                    need = '"text" and "text_pair"' if pair_column else '"text"'
                    raise UserError(f"{source}:{number}: the JSON object needs {need} strings")
            elif pair_column:
                if "\t" not in line:
                    raise UserError(f"{source}:{number}: this model reads sentence pairs; give "
                                    f"'first<TAB>second' or {{\"text\": ..., \"text_pair\": ...}}")
                first, second = line.split("\t", 1)
            else:
                first, second = line, None
            texts.append(first)
            pairs.append(second)
        return LabelledExamples(Path(source), texts, pairs if pair_column else None, None,
                        [n for n, _ in lines], ("text", "text_pair" if pair_column else None, None))

    def build_model(self, arch, labels, settings, classifier_dropout):
        return BertForSequenceClassification(arch, self.num_outputs(labels), classifier_dropout, settings.pooling)


class ClassificationTask(SentenceTask):
    name = "cls"
    selection_metric = "accuracy"
    shown_metrics = ("accuracy", "f1", "mcc")

    def label_set(self, data: LabelledExamples) -> list[str]:
        labels = label_names(data.labels, data.path)
        if len(labels) < 2:
            raise UserError(f"{data.path}: only one label ({labels[0]!r}); classification needs at least two")
        return labels

    def encode(self, data, tokenizer, settings, labels):
        ids = label_ids(data, labels) if data.labels is not None else None
        return Batchable(data, encode_examples(data, tokenizer, settings.max_seq_len, ids))

    def loss(self, outputs, batch):
        return F.cross_entropy(outputs.float(), batch["labels"])

    def metrics(self, data, outputs, labels, settings):
        logits = np.stack(outputs)
        return classification_metrics(logits.argmax(-1), data.encoded.labels, len(labels))

    def predictions(self, data, outputs, labels, settings):
        records = []
        for logits in outputs:
            p = softmax(logits.astype(np.float64))
            records.append({"label": labels[int(p.argmax())],
                            "probabilities": {name: round(float(v), 6) for name, v in zip(labels, p)}})
        return records


class RegressionTask(SentenceTask):
    name = "regression"
    selection_metric = "spearman"  # GLUE reports STS-B as Pearson/Spearman; Spearman picks the epoch
    shown_metrics = ("pearson", "spearman", "mse")
    has_labels = False

    def num_outputs(self, labels):
        return 1

    def encode(self, data, tokenizer, settings, labels):
        scores = None
        if data.labels is not None:
            scores = np.empty(len(data.labels), dtype=np.float32)
            for i, (label, line) in enumerate(zip(data.labels, data.lines)):
                try:
                    scores[i] = float(label)
                except ValueError:
                    raise UserError(f"{data.path}:{line}: label {label!r} is not a number; --task regression "
                                    f"needs a score per example (for classes use --task cls)")
                if not np.isfinite(scores[i]):
                    raise UserError(f"{data.path}:{line}: label {label!r} is not a finite number")
        return Batchable(data, encode_examples(data, tokenizer, settings.max_seq_len, scores))

    def loss(self, outputs, batch):
        return F.mse_loss(outputs.float().squeeze(-1), batch["labels"].float())

    def metrics(self, data, outputs, labels, settings):
        return regression_metrics(np.stack(outputs)[:, 0], data.encoded.labels)

    def predictions(self, data, outputs, labels, settings):
        return [{"score": round(float(out[0]), 6)} for out in outputs]
