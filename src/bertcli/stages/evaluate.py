"""`bertcli eval`: metrics of a checkpoint on labelled data or on a pretraining corpus.

JSON goes to stdout (for scripts), everything else to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from bertcli import artifacts
from bertcli.checkpoint import load_checkpoint
from bertcli.config import TaskDataConfig
from bertcli.data.shards import CorpusReader, corpus_splits
from bertcli.data.tasks import encode_examples, label_ids, read_examples
from bertcli.errors import UserError
from bertcli.model import BertForPretraining, BertForSequenceClassification
from bertcli.runtime import console, pick_device
from bertcli.train.evaluation import evaluate_classification, evaluate_pretraining


def run(checkpoint: Path, data: Path, as_json: bool = False, batch_size: int = 64, max_examples: int = 0,
        split: str = "auto", device: str = "auto") -> dict:
    ckpt = load_checkpoint(checkpoint)
    target = pick_device(device)
    if Path(data).is_dir():
        metrics = evaluate_corpus(ckpt, Path(data), batch_size, max_examples, split, target)
    else:
        metrics = evaluate_labelled(ckpt, Path(data), batch_size, max_examples, target)
    metrics = {"checkpoint": str(ckpt.folder), "data": str(data), **metrics}
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
    else:
        for key, value in metrics.items():
            console.print(f"{key:>16}  {value:.4f}" if isinstance(value, float) else f"{key:>16}  {value}")
    return metrics


def evaluate_corpus(ckpt, folder: Path, batch_size: int, max_examples: int, split: str,
                    device: torch.device) -> dict:
    artifacts.require(folder, "corpus")
    if ckpt.task != "pretraining":
        raise UserError(f"{ckpt.folder}: a {ckpt.task} checkpoint has no MLM/NSP heads; evaluate a pretrain "
                        f"checkpoint on a corpus, or give this one a labelled file with --data")
    if split == "auto":
        split = "eval" if "eval" in corpus_splits(folder) else "train"
    reader = CorpusReader(folder, split)
    if reader.max_seq_len > ckpt.config.max_position_embeddings:
        raise UserError(f"{folder}: examples are {reader.max_seq_len} tokens but {ckpt.folder} has "
                        f"{ckpt.config.max_position_embeddings} positions; rebuild the corpus with a smaller "
                        f"--max-seq-len")
    if reader.tokenizer_fingerprint != ckpt.tokenizer().fingerprint():
        raise UserError(f"{folder}: built with a different tokenizer than {ckpt.folder}; rebuild the corpus "
                        f"with --tokenizer {ckpt.folder}/tokenizer")
    model = BertForPretraining(ckpt.config)
    model.load_state_dict(ckpt.state_dict())
    model.to(device)
    console.print(f"evaluating {'MLM/NSP' if reader.has_nsp else 'MLM'} on {folder} ({split} split)")
    return {"split": split, **evaluate_pretraining(model, reader, batch_size, max_examples)}


def evaluate_labelled(ckpt, path: Path, batch_size: int, max_examples: int, device: torch.device) -> dict:
    if ckpt.task != "cls":
        raise UserError(f"{ckpt.folder}: a {ckpt.task} checkpoint has no classification head; fine-tune it "
                        f"with `bertcli finetune --task cls`, or evaluate it on a corpus folder")
    columns = ckpt.extra.get("columns", {})
    max_seq_len = min(ckpt.extra.get("max_seq_len", 128), ckpt.config.max_position_embeddings)
    data_cfg = TaskDataConfig(**{k: v or "none" for k, v in columns.items()}, max_seq_len=max_seq_len)
    examples = read_examples(path, data_cfg)
    if max_examples > 0:
        for field in ("texts", "pairs", "labels", "lines"):
            values = getattr(examples, field)
            if values is not None:
                setattr(examples, field, values[:max_examples])
    tokenizer = ckpt.tokenizer()
    encoded = encode_examples(examples, tokenizer, data_cfg.max_seq_len, label_ids(examples, ckpt.labels))
    model = BertForSequenceClassification(ckpt.config, len(ckpt.labels))
    model.load_state_dict(ckpt.state_dict())
    model.to(device)
    console.print(f"evaluating {ckpt.task} on {path} ({len(encoded):,} examples)")
    return evaluate_classification(model, encoded, tokenizer.pad_id, batch_size)
