"""`bertcli inspect` on every kind of folder, and `--dump` of corpus examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertcli import artifacts
from conftest import cli
from bertcli.config import BuildCorpusConfig
from bertcli.stages import build_corpus
from bertcli.tokenizer import load_tokenizer

DUMP_FIELDS = ["input_ids", "token_type_ids", "mlm_positions", "mlm_labels", "next_sentence_label", "tokens"]




def inspect_json(capsys, *args) -> dict:
    assert cli("inspect", *args, "--json") == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, text_files, tokenizer_dir) -> Path:
    out = tmp_path_factory.mktemp("inspect") / "corpus"
    build_corpus.run(BuildCorpusConfig(input=[str(p) for p in text_files], tokenizer=str(tokenizer_dir), out=str(out),
                                       max_seq_len=64, dupe_factor=1, seed=4, eval_fraction=0.3))
    return out


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, tokenizer_dir) -> Path:
    """A pretrain-run folder as `bertcli pretrain` lays it out, with a tiny hand-made checkpoint."""
    import torch

    from bertcli.checkpoint import save_checkpoint
    from bertcli.model import BertConfig

    run = tmp_path_factory.mktemp("inspect") / "run"
    (run / "steps" / "step-00000002").mkdir(parents=True)
    artifacts.write_manifest(run, "pretrain-run", {"train": {"max_steps": 4}})
    (run / "metrics.jsonl").write_text('{"step": 2, "loss": 7.5}\n{"step": 4, "loss": 6.25}\n', encoding="utf-8")
    config = BertConfig(vocab_size=600, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                        max_position_embeddings=16)
    state = {"bert.embeddings.word_embeddings.weight": torch.zeros(600, 8), "mlm.bias": torch.zeros(600)}
    save_checkpoint(run / "final", state, config, "pretraining", ["mlm", "nsp"], load_tokenizer(tokenizer_dir))
    return run


def test_tokenizer_description(capsys, tokenizer_dir):
    info = inspect_json(capsys, tokenizer_dir)
    assert info["kind"] == "tokenizer" and info["backend"] == "sentencepiece"
    assert info["vocab_size"] == 600 and info["lowercase"] is True
    assert info["special_ids"] == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert len(info["sample"]["ids"]) == len(info["sample"]["pieces"]) > 0
    assert cli("inspect", tokenizer_dir) == 0
    assert "sentencepiece" in capsys.readouterr().out


def test_corpus_description(capsys, corpus):
    info = inspect_json(capsys, corpus)
    manifest = artifacts.read_manifest(corpus)
    assert info["kind"] == "corpus" and set(info["splits"]) == {"train", "eval"}
    for name in ("train", "eval"):
        assert info["splits"][name]["examples"] == manifest["splits"][name]["examples"]
    assert info["statistics"]["masked_share"] == manifest["statistics"]["masked_share"]
    assert info["config"]["seed"] == 4
    assert cli("inspect", corpus) == 0
    out = capsys.readouterr().out
    assert "corpus" in out and "masked_share" in out and "nsp_random_share" in out


def test_dump_writes_the_six_fields(capsys, corpus, tokenizer_dir):
    tokenizer = load_tokenizer(tokenizer_dir)
    assert cli("inspect", corpus, "--dump", 5) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    for line in lines:
        example = json.loads(line)
        assert list(example) == DUMP_FIELDS
        ids = example["input_ids"]
        assert example["tokens"] == tokenizer.pieces(ids)
        assert example["tokens"][0] == "[CLS]" and example["tokens"][-1] == "[SEP]"
        assert len(example["token_type_ids"]) == len(ids)
        assert len(example["mlm_positions"]) == len(example["mlm_labels"])
        assert example["next_sentence_label"] in (0, 1)
        predicted = set(example["mlm_positions"])
        unpredicted = [ids[p] for p in range(len(ids)) if p not in predicted]
        assert tokenizer.mask_id not in unpredicted, "[MASK] appears only where a label is predicted"
        assert not {ids[p] for p in predicted} & {tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id}
        assert not set(example["mlm_labels"]) & tokenizer.special_ids


def test_dump_of_eval_split_and_of_more_than_there_is(capsys, corpus):
    examples = artifacts.read_manifest(corpus)["splits"]["eval"]["examples"]
    assert cli("inspect", corpus, "--dump", examples + 50, "--split", "eval") == 0
    assert len(capsys.readouterr().out.splitlines()) == examples


def test_run_and_checkpoint_descriptions(capsys, run_folder):
    info = inspect_json(capsys, run_folder)
    assert info["kind"] == "pretrain-run"
    assert info["steps"] == ["step-00000002"]
    assert info["last_metrics"] == {"step": 4, "loss": 6.25}
    final = info["final"]
    assert final["kind"] == "checkpoint" and final["task"] == "pretraining" and final["heads"] == ["mlm", "nsp"]
    assert final["parameters"] == 600 * 8 + 600 and final["encoder_parameters"] == 600 * 8
    assert final["config"]["hidden_size"] == 8
    assert inspect_json(capsys, run_folder / "final")["parameters"] == 600 * 8 + 600
    assert cli("inspect", run_folder) == 0
    assert "step-00000002" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing"], "not found; expected a tokenizer, corpus"),
    (["{tmp}"], "not a bertcli folder; expected a tokenizer, corpus"),
    (["{tok}", "--dump", "3"], "is a tokenizer folder; --dump prints corpus examples"),
    (["{corpus}", "--dump", "3", "--split", "dev"], "no 'dev' split; this corpus has: train, eval"),
])
def test_errors_are_one_line(capsys, tmp_path, corpus, tokenizer_dir, args, message):
    values = {"tmp": tmp_path, "tok": tokenizer_dir, "corpus": corpus}
    assert cli("inspect", *[a.format(**values) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
