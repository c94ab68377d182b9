"""A fine-tuned checkpoint back as (task, settings, labels, model), for `eval` and `predict`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bertcli.tasks.conll import looks_like_tag
from bertcli.errors import UserError
from bertcli.tasks import TASKS, Task, TaskSettings, get_task


@dataclass
class TaskModel:
    task: Task
    settings: TaskSettings
    labels: list[str]
    model: nn.Module


def load_task_model(ckpt, expected: str | None, command: str) -> TaskModel:
    """The checkpoint's task head with its weights; refuses a checkpoint of another task than
    `expected` (the --task given), or one without a task head."""
    if ckpt.task not in TASKS:
        raise UserError(f"{ckpt.folder}: a {ckpt.task} checkpoint has no task head; fine-tune it first with "
                        f"`bertcli finetune --task {expected or 'cls|regression|ner|qa'}`")
    if expected and expected != ckpt.task:
        raise UserError(f"{ckpt.folder}: fine-tuned for {ckpt.task}, not {expected}; give `{command}` a checkpoint "
                        f"fine-tuned with --task {expected}, or --task {ckpt.task} with data for that task")
    task = get_task(ckpt.task)
    extra = ckpt.extra
    settings = TaskSettings.from_dict(extra.get("settings") or
                                      {"columns": extra.get("columns", {}), "max_seq_len": extra.get("max_seq_len", 128)})
    settings = TaskSettings(**{**settings.to_dict(),
                               "max_seq_len": min(settings.max_seq_len, ckpt.config.max_position_embeddings)})
    labels = list(ckpt.labels)
    if settings.mode == "features":
        model = task.build_feature_model(ckpt.config, labels, settings, 0.0)
    else:
        model = task.build_model(ckpt.config, labels, settings, 0.0)
    model.load_state_dict(ckpt.state_dict())
    return TaskModel(task, settings, labels, model.eval())


def check_data_kind(task: str, path) -> None:
    """Refuse data that plainly belongs to another kind of task than the checkpoint's, before a
    reader fails on it with a less useful message."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    fields = head.split("\n", 1)[0].split()
    if head.startswith("{") and '"data"' in head:
        kind, what = "qa", "SQuAD JSON"
    elif fields and (fields[0] == "-DOCSTART-" or (len(fields) >= 2 and looks_like_tag(fields[-1]))):
        kind, what = "ner", "CoNLL (word and tag per line)"
    elif "\t" in head.split("\n", 1)[0] or path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        kind, what = "cls/regression", "a table of examples"
    else:
        return
    if task not in kind.split("/"):
        raise UserError(f"{path}: looks like {what}, data for --task {kind}, but the checkpoint is fine-tuned "
                        f"for {task}; give data for {task} or a checkpoint fine-tuned for {kind}")
