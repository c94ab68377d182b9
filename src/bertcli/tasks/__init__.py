"""Downstream tasks, one module each, behind one interface (tasks/base.py)."""

from __future__ import annotations

from bertcli.errors import UserError
from bertcli.tasks.base import Batchable, Task, TaskSettings
from bertcli.tasks.classify import ClassificationTask, RegressionTask
from bertcli.tasks.ner import NerTask
from bertcli.tasks.qa import QATask

TASKS: dict[str, type[Task]] = {"cls": ClassificationTask, "regression": RegressionTask, "ner": NerTask,
                                "qa": QATask}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "Batchable", "Task", "TaskSettings", "get_task"]
