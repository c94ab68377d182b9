"""Shared fixtures: a tiny tokenizer trained in the test session, and the path to ../shared/data."""

from __future__ import annotations

import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# BERTCLI_SHARED_DATA points elsewhere, e.g. from a worktree whose parent has no shared/ beside it.
SHARED_DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def bertcli_cache(tmp_path_factory) -> Path:
    """bertcli's cache (corpus verification records) in the session's temporary folder, not in ~."""
    cache = tmp_path_factory.mktemp("bertcli-cache")
    os.environ["BERTCLI_CACHE"] = str(cache)
    return cache


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


# ----------------------------------------------------------------------------- a tiny world of folders
# Two tokenizers, two corpora, a pretraining run and a fine-tuning run, built once per session: the
# bad-input catalogue and the report tests read them (and never change them).

TINY_WORLD_MODEL = ["--preset", "tiny", "--set", "model.hidden_size=32", "--set", "model.num_layers=1",
                    "--set", "model.num_heads=2", "--set", "model.intermediate_size=64",
                    "--set", "model.max_position_embeddings=64"]
_QUIET = ["--set", "runtime.progress=none"]


@dataclass
class TinyWorld:
    root: Path
    text: Path  # a text file
    tok: Path
    tok2: Path  # another tokenizer (different vocabulary)
    corpus: Path
    corpus2: Path  # built with tok2
    run: Path  # pretrain run
    ft: Path  # finetune run
    train: Path  # labelled TSV
    dev: Path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory, tokenizer_dir, text_files) -> TinyWorld:
    root = tmp_path_factory.mktemp("catalogue")
    tok = root / "tok"
    shutil.copytree(tokenizer_dir, tok)
    assert cli("tokenize", "train", "--input", *text_files[:5], "--out", root / "tok2", "--vocab-size", 300) == 0
    corpus_args = ["--max-seq-len", 32, "--dupe-factor", 1, "--set", "eval_fraction=0.2"]
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tok, "--out", root / "corpus", *corpus_args) == 0
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", root / "tok2", "--out", root / "corpus2",
               *corpus_args) == 0
    assert cli("pretrain", "--corpus", root / "corpus", "--out", root / "run", *TINY_WORLD_MODEL, "--set", "train.max_steps=4",
               "--set", "train.batch_size=8", "--set", "train.save_every=2", "--set", "train.log_every=2",
               "--set", "train.eval_examples=8", "--set", "train.eval_every=2", *_QUIET) == 0
    sys.path.insert(0, str(ROOT / "scripts"))
    from demo_inputs import labelled

    rng = random.Random(0)
    for split, count in (("train", 32), ("dev", 16)):
        (root / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in labelled(rng, count)))
    assert cli("finetune", "--init", root / "run", "--train", root / "train.tsv", "--dev", root / "dev.tsv",
               "--out", root / "ft", "--epochs", 2, "--batch-size", 16, "--max-seq-len", 32, "--set", "train.log_every=1",
               *_QUIET) == 0
    return TinyWorld(root, text_files[0], tok, root / "tok2", root / "corpus", root / "corpus2", root / "run",
                    root / "ft", root / "train.tsv", root / "dev.tsv")


