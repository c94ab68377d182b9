"""`bertcli eval`: metrics of a checkpoint on labelled data or on a pretraining corpus.

JSON goes to stdout (for scripts), everything else to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from bertcli import artifacts
from bertcli.checkpoint import load_checkpoint, load_pretraining_model
from bertcli.config import EvalConfig
from bertcli.data.shards import CorpusReader, corpus_splits
from bertcli.errors import UserError
from bertcli.model.electra import ElectraForPretraining
from bertcli.runtime import console, pick_device
from bertcli.tasks.loading import check_data_kind, load_task_model
from bertcli.train.evaluation import evaluate_pretraining, forward_all


def run(cfg: EvalConfig) -> dict:
    ckpt = load_checkpoint(cfg.checkpoint)
    target = pick_device(cfg.device)
    data = Path(cfg.data)
    if data.is_dir():
        metrics = evaluate_corpus(ckpt, data, cfg.batch_size, cfg.max_examples, cfg.split, target)
    else:
        metrics = evaluate_labelled(ckpt, data, cfg.batch_size, cfg.max_examples, target, cfg.task)
    metrics = {"checkpoint": str(ckpt.folder), "data": str(data), **metrics}
    if cfg.json:
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
    model = load_pretraining_model(ckpt).to(device)
    electra = isinstance(model, ElectraForPretraining)
    what = "replaced-token detection" if electra else "MLM/NSP" if reader.has_nsp else "MLM"
    console.print(f"evaluating {what} on {folder} ({split} split)")
    return {"split": split, **evaluate_pretraining(model, reader, batch_size, max_examples)}


def evaluate_labelled(ckpt, path: Path, batch_size: int, max_examples: int, device: torch.device,
                     task: str | None = None) -> dict:
    loaded = load_task_model(ckpt, task, "eval")
    check_data_kind(ckpt.task, path)
    data = loaded.task.read(path, loaded.settings)
    if max_examples > 0:
        data = truncate_examples(data, max_examples)
    tokenizer = ckpt.tokenizer()
    encoded = loaded.task.encode(data, tokenizer, loaded.settings, loaded.labels)
    if len(encoded.encoded) == 0:
        raise UserError(f"{path}: no examples to evaluate; give a file with labelled examples")
    model = loaded.model.to(device)
    console.print(f"evaluating {ckpt.task} on {path} ({len(encoded.encoded):,} inputs)")
    outputs = forward_all(model, encoded.encoded, tokenizer.pad_id, batch_size)
    return {"task": ckpt.task, **loaded.task.metrics(encoded, outputs, loaded.labels, loaded.settings)}


def truncate_examples(data, n: int):
    """The first n examples of whatever a task's reader returned (lists of per-example fields)."""
    if hasattr(data, "items"):  # SQuAD questions
        data.items = data.items[:n]
        return data
    for name, value in vars(data).items():
        if isinstance(value, list):
            setattr(data, name, value[:n])
    return data
