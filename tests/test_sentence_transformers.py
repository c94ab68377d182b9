"""convert --to sentence-transformers (issue 21): SentenceTransformer(DIR).encode gives embed's vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import cli

pytest.importorskip("sentence_transformers")

TEXTS = ["the cat sat on the mat", "a", "one more line of text that is longer than the others by far"]


def _embed(capsys, ckpt, text, *args) -> np.ndarray:
    assert cli("embed", ckpt, text, *args) == 0
    return np.array([json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()])


@pytest.mark.parametrize("args", [["--pooling", "mean", "--normalize"], ["--pooling", "cls"]])
def test_sentence_transformers_encode_gives_embed_vectors(tiny_world, tmp_path, capsys, monkeypatch, args):
    from sentence_transformers import SentenceTransformer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "st"
    assert cli("convert", tiny_world.ft, "--to", "sentence-transformers", "--out", out, *args) == 0
    text = tmp_path / "in.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    ours = _embed(capsys, tiny_world.ft, text, *args)
    theirs = SentenceTransformer(str(out), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() < 1e-5


def test_pooler_pooling_has_no_sentence_transformers_form(tiny_world, tmp_path, capsys):
    out = tmp_path / "st"
    assert cli("convert", tiny_world.run, "--to", "sentence-transformers", "--out", out, "--pooling", "pooler") == 2
    assert "sentence-transformers pools by mean or cls" in capsys.readouterr().err
    assert not out.exists()
