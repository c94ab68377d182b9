"""Shared fixtures: a tiny tokenizer trained in the test session, and the path to ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# BERTCLI_SHARED_DATA points elsewhere, e.g. from a worktree whose parent has no shared/ beside it.
SHARED_DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """A file under ../shared/data, or skip the test when the shared data is not beside the repo."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not present (the shared data sets live beside the repository)")
    return path


@pytest.fixture(scope="session")
def text_files(tmp_path_factory) -> list[Path]:
    """A few documents of real English prose (CPython's documentation topics)."""
    import pydoc_data.topics

    folder = tmp_path_factory.mktemp("text")
    paths = []
    for name in ("if", "while", "for", "try", "class", "function", "import", "assignment", "types", "lambda"):
        path = folder / f"{name}.txt"
        path.write_text(pydoc_data.topics.topics[name], encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, text_files) -> Path:
    from bertcli.config import TokenizeConfig
    from bertcli.stages import tokenize

    out = tmp_path_factory.mktemp("tok") / "tok"
    tokenize.train(TokenizeConfig(input=[str(p) for p in text_files], out=str(out), vocab_size=600, lowercase=True))
    return out


def cli(*args) -> int:
    """Run bertcli in-process with these arguments; return its exit code."""
    from bertcli.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
