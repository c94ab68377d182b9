"""Labelled examples for classification: TSV / CSV / JSONL readers, column picking, encoding.

GLUE's TSVs work as they are: SST-2 (`sentence`, `label`), MRPC (`#1 String`, `#2 String`,
`Quality`), QNLI (`question`, `sentence`, `label`), and so on.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bertcli.config import TaskDataConfig
from bertcli.data.decoding import read_text_file
from bertcli.errors import UserError
from bertcli.tokenizer import Tokenizer
from bertcli.labels import IGNORE_INDEX

# Tried in order when a column is "auto": pair columns first, so QNLI's (question, sentence) is
# read as a pair before `sentence` alone would match.
PAIR_COLUMNS = [("sentence1", "sentence2"), ("#1 String", "#2 String"), ("question", "sentence"),
                ("question1", "question2"), ("premise", "hypothesis"), ("text_a", "text_b")]
SINGLE_COLUMNS = ["sentence", "text", "text_a", "content", "review"]
LABEL_COLUMNS = ["label", "Quality", "labels", "gold_label"]  # not STS-B's `score`: that is regression


@dataclass
class LabelledExamples:
    path: Path
    texts: list[str]
    pairs: list[str] | None
    labels: list[str] | None  # raw label strings; None when the file has no label column
    lines: list[int]  # the file line of each example, for error messages
    columns: tuple[str, str | None, str | None]  # text, pair, label column actually used


def detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return "tsv"


def read_rows(path: Path, fmt: str) -> tuple[list[dict[str, str]], list[int]]:
    """Rows as dicts keyed by column name, with the file line of each row."""
    text = read_text_file(path, flag="--train/--dev/--data")
    rows, lines = [], []
    if fmt == "jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc.msg}); JSONL needs one object per line")
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: expected a JSON object with text and label fields")
            rows.append({k: "" if v is None else str(v) for k, v in row.items()})
            lines.append(number)
        return rows, lines
    # GLUE TSVs contain bare quotes inside sentences: read them literally, not as CSV quoting.
    reader = csv.reader(io.StringIO(text), delimiter="\t" if fmt == "tsv" else ",",
                        quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL)
    try:
        header = next(reader)
    except StopIteration:
        raise UserError(f"{path}: is empty; a {fmt.upper()} file needs a header row and examples")
    header = [name.strip() for name in header]
    try:
        for row in reader:
            _add_row(path, reader.line_num, row, header, rows, lines)
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: cannot parse ({exc}); is it really {fmt.upper()}? "
                        f"(--set data.format=tsv|csv|jsonl)")
    return rows, lines


def _add_row(path: Path, number: int, row: list[str], header: list[str], rows: list, lines: list) -> None:
    if not any(cell.strip() for cell in row):
        return
    if len(row) != len(header):
        raise UserError(f"{path}:{number}: {len(row)} columns but the header has {len(header)}; "
                        f"fix that line (is the delimiter right? --set data.format=tsv|csv)")
    rows.append(dict(zip(header, row)))
    lines.append(number)


def pick_columns(path: Path, names: list[str], cfg: TaskDataConfig,
                 need_labels: bool) -> tuple[str, str | None, str | None]:
    def check(name: str, key: str) -> str:
        if name not in names:
            raise UserError(f"{path}: no column {name!r} (data.{key}); columns are: {', '.join(names)}")
        return name

    text = pair = None
    if cfg.text_column != "auto":
        text = check(cfg.text_column, "text_column")
        if cfg.text_pair_column not in ("auto", "none", ""):
            pair = check(cfg.text_pair_column, "text_pair_column")
    else:
        if cfg.text_pair_column in ("auto",):
            for first, second in PAIR_COLUMNS:
                if first in names and second in names:
                    text, pair = first, second
                    break
        if text is None:
            text = next((name for name in SINGLE_COLUMNS if name in names), None)
        if text is None:
            raise UserError(f"{path}: cannot tell which column holds the text (columns: {', '.join(names)}); "
                            f"name it with --set data.text_column=NAME")
        if cfg.text_pair_column not in ("auto", "none", ""):
            pair = check(cfg.text_pair_column, "text_pair_column")
    if cfg.label_column != "auto":
        label = check(cfg.label_column, "label_column")
    else:
        label = next((name for name in LABEL_COLUMNS if name in names), None)
    if need_labels and label is None and cfg.label_column == "auto" and "score" in names:
        label = "score"  # STS-B-style files; the task decides whether it reads classes or scores
    if need_labels and label is None:
        raise UserError(f"{path}: no label column (columns: {', '.join(names)}); "
                        f"name it with --set data.label_column=NAME")
    return text, pair, label


def read_examples(path: str | Path, cfg: TaskDataConfig, need_labels: bool = True) -> LabelledExamples:
    path = Path(path)
    rows, lines = read_rows(path, detect_format(path, cfg.format))
    if not rows:
        raise UserError(f"{path}: has no examples; add rows below the header")
    text, pair, label = pick_columns(path, list(rows[0].keys()), cfg, need_labels)
    for row, line in zip(rows, lines):  # JSONL rows need not share the first row's fields
        missing = [name for name in (text, pair, label) if name and name not in row]
        if missing:
            raise UserError(f"{path}:{line}: no field {missing[0]!r}; every example needs it")
    return LabelledExamples(
        path=path,
        texts=[row[text] for row in rows],
        pairs=[row[pair] for row in rows] if pair else None,
        labels=[row[label].strip() for row in rows] if label else None,
        lines=lines,
        columns=(text, pair, label),
    )


def label_names(labels: list[str], path: Path | None = None) -> list[str]:
    """The label set in a stable order: numerically when every label is a number, else by name.

    Labels that are fractional numbers are scores (STS-B), not classes: refused, not turned into
    hundreds of classes.
    """
    unique = set(labels)
    try:
        numbers = sorted(unique, key=float)
    except ValueError:
        return sorted(unique)
    fractional = next((label for label in numbers if not float(label).is_integer()), None)
    if fractional is not None:
        raise UserError(f"{path or 'labels'}: label {fractional!r} is a score, not a class; --task cls needs "
                        f"class labels. For scores use --task regression")
    return numbers


def label_ids(examples: LabelledExamples, names: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    ids = np.empty(len(examples.labels), dtype=np.int64)
    for i, (label, line) in enumerate(zip(examples.labels, examples.lines)):
        if label not in index:
            raise UserError(f"{examples.path}:{line}: unknown label {label!r}; the model knows "
                            f"{', '.join(map(repr, names))}. Fix the label or train on data that has it")
        ids[i] = index[label]
    return ids




@dataclass
class EncodedExamples:
    """Token ids of each example (or each QA window) and what it is trained to predict."""

    input_ids: list[np.ndarray]  # each [CLS] a [SEP] (b [SEP])
    token_type_ids: list[np.ndarray]
    labels: np.ndarray | None  # one per example: class ids (int64) or scores (float32)
    token_labels: list[np.ndarray] | None = None  # NER: one per token, IGNORE_INDEX where none
    spans: np.ndarray | None = None  # QA: (N, 2) answer start and end token, 0 0 when absent
    meta: list | None = None  # how each row maps back to its example (NER first pieces, QA windows)
    truncated: int = 0  # examples cut to fit max_seq_len (cls/regression; NER marks cut words in meta)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def batch(self, indices, pad_id: int) -> dict[str, np.ndarray]:
        """Pad the chosen examples to the longest of them."""
        T = max(len(self.input_ids[i]) for i in indices)
        input_ids = np.full((len(indices), T), pad_id, dtype=np.int64)
        token_type_ids = np.zeros((len(indices), T), dtype=np.int64)
        attention_mask = np.zeros((len(indices), T), dtype=np.int64)
        token_labels = np.full((len(indices), T), IGNORE_INDEX, dtype=np.int64)
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            input_ids[row, :n] = self.input_ids[i]
            token_type_ids[row, :n] = self.token_type_ids[i]
            attention_mask[row, :n] = 1
            if self.token_labels is not None:
                token_labels[row, :n] = self.token_labels[i]
        batch = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        if self.labels is not None:
            batch["labels"] = self.labels[np.asarray(indices)]
        if self.token_labels is not None:
            batch["labels"] = token_labels
        if self.spans is not None:
            batch["spans"] = self.spans[np.asarray(indices)]
        return batch


def truncate_pair(a: list[int], b: list[int], max_tokens: int) -> tuple[list[int], list[int]]:
    """Drop tokens from the end of the longer text until both fit (run_classifier.py's rule)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        (a if len(a) > len(b) else b).pop()
    return a, b


def encode_examples(examples: LabelledExamples, tokenizer: Tokenizer, max_seq_len: int,
                    labels: np.ndarray | None) -> EncodedExamples:
    firsts = tokenizer.encode_batch(examples.texts)
    seconds = tokenizer.encode_batch(examples.pairs) if examples.pairs is not None else None
    input_ids, token_type_ids, truncated = [], [], 0
    for i, a in enumerate(firsts):
        if seconds is None:
            truncated += len(a) > max_seq_len - 2
            a = a[: max_seq_len - 2]
            ids = [tokenizer.cls_id, *a, tokenizer.sep_id]
            types = [0] * len(ids)
        else:
            truncated += len(a) + len(seconds[i]) > max_seq_len - 3
            a, b = truncate_pair(a, seconds[i], max_seq_len - 3)
            ids = [tokenizer.cls_id, *a, tokenizer.sep_id, *b, tokenizer.sep_id]
            types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        input_ids.append(np.asarray(ids, dtype=np.int64))
        token_type_ids.append(np.asarray(types, dtype=np.int64))
    return EncodedExamples(input_ids, token_type_ids, labels, truncated=truncated)
