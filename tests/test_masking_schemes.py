"""Masking schemes (static/dynamic, whole-word, rate and split) and MLM-only packed examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from bertcli.data.documents import Documents
from bertcli.data.masking import KEPT, MASKED, RANDOM, Masker, MaskingRule
from bertcli.data.packing import make_packed_examples
from bertcli.data.shards import CorpusReader
from bertcli.tokenizer import load_tokenizer
from conftest import cli

PAD, UNK, CLS, SEP, MASK = range(5)
SPECIALS = frozenset(range(5))
VOCAB = 1000
TINY_MODEL = ["--set", "model.hidden_size=32", "--set", "model.num_layers=2", "--set", "model.num_heads=2",
              "--set", "model.intermediate_size=64", "--set", "model.max_position_embeddings=64"]


def test_whole_word_masking_masks_every_piece_of_a_chosen_word():
    rng = np.random.default_rng(0)
    word_starts = np.zeros(VOCAB, dtype=bool)
    word_starts[5:500] = True  # ids 5..499 begin a word, 500..999 continue one
    word_starts[:5] = True
    masker = Masker(VOCAB, SPECIALS, MASK, rule=MaskingRule(0.15, 20, whole_word_mask=True),
                    word_starts=word_starts, unk_id=UNK)
    masked = total = 0
    for _ in range(300):
        words = [np.r_[rng.integers(5, 500), rng.integers(500, 1000, rng.integers(0, 4))] for _ in range(30)]
        original = np.r_[CLS, np.concatenate(words), SEP].astype(np.int64)[:128]
        original[-1] = SEP
        ids = original.copy()
        prediction = masker(ids, rng)
        chosen = set(prediction.positions.tolist())
        # group positions into words; a word is either wholly predicted or not at all
        starts = [p for p in range(1, len(ids) - 1) if word_starts[original[p]]] + [len(ids) - 1]
        for a, b in zip(starts, starts[1:]):
            inside = [p in chosen for p in range(a, b)]
            assert all(inside) or not any(inside), (a, b, inside)
        assert len(chosen) <= 20 and not chosen & {0, len(ids) - 1}
        masked += len(chosen)
        total += len(ids)
    assert 0.13 < masked / total < 0.16  # whole words fill the budget of round(15 % of len)


def test_mask_rate_and_replacement_split_are_settings():
    rng = np.random.default_rng(1)
    rule = MaskingRule(masked_lm_prob=0.3, max_predictions=200, mask_token_prob=0.5, random_token_prob=0.3)
    masker = Masker(VOCAB, SPECIALS, MASK, rule=rule, unk_id=UNK)
    counts, predicted, tokens = np.zeros(3), 0, 0
    for _ in range(500):
        ids = np.r_[CLS, rng.integers(5, VOCAB, 100), SEP]
        prediction = masker(ids, rng)
        counts += prediction.counts
        predicted += len(prediction.positions)
        tokens += len(ids)
    shares = counts / counts.sum()
    assert abs(predicted / tokens - 0.3) < 0.005
    assert abs(shares[MASKED] - 0.5) < 0.02 and abs(shares[RANDOM] - 0.3) < 0.02 and abs(shares[KEPT] - 0.2) < 0.02


def test_packed_examples_are_full_length_and_keep_the_text_in_order():
    documents = [[[10 + d * 100 + s * 10 + t for t in range(1 + (s + d) % 7)] for s in range(5)] for d in range(12)]
    docs = Documents.from_ids(documents, np.int32)
    examples = make_packed_examples(docs, range(12), np.random.default_rng(0), 16, None, CLS, SEP)
    rows = examples.input_ids.reshape(-1, 16)
    assert len(rows) > 5 and np.all(examples.lengths == 16)
    assert np.all(rows[:, 0] == CLS) and np.all(rows[:, -1] == SEP)
    assert not np.isin(rows, [PAD]).any(), "no position is padding"
    assert examples.mlm_counts.sum() == 0, "no masker: left for dynamic masking"
    # consecutive rows continue one stream: each document's tokens appear whole and in order
    stream = rows[:, 1:-1].reshape(-1)
    pieces = np.split(stream, np.flatnonzero(stream == SEP))
    inner = [p[p != SEP] for p in pieces[1:-1]]  # whole documents between two [SEP]s
    by_first = {int(docs.tokens[docs.sentence_offsets[docs.document_offsets[d]]]): d for d in range(12)}
    for piece in inner:
        d = by_first[int(piece[0])]
        first, stop = docs.sentence_offsets[docs.document_offsets[[d, d + 1]]]
        assert np.array_equal(piece, docs.tokens[first:stop])


@pytest.fixture(scope="module")
def mlm_corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    out = tmp_path_factory.mktemp("mlm") / "corpus"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 1, "--objective", "mlm", "--masking", "dynamic",
               "--whole-word-mask", "--set", "eval_fraction=0.2") == 0
    return out


def test_dynamic_masks_are_a_function_of_epoch_and_example(mlm_corpus):
    reader = CorpusReader(mlm_corpus)
    manifest = json.loads((mlm_corpus / "manifest.json").read_text())
    assert (manifest["objective"], manifest["masking"], manifest["masking_rule"]["whole_word_mask"]) == \
           ("mlm", "dynamic", True)
    a, b = reader.batch([0, 1, 2], [0, 0, 0]), reader.batch([0, 1, 2], [0, 0, 0])
    assert "next_sentence_label" not in a, "an MLM-only corpus has no NSP labels"
    assert a["attention_mask"].all(), "packed examples hold no padding"
    for key in a:
        assert np.array_equal(a[key], b[key])
    other_epoch = reader.batch([0, 1, 2], [1, 1, 1])
    assert not np.array_equal(a["mlm_positions"], other_epoch["mlm_positions"])
    # the same example read alone or in another batch gets the same masks
    alone = reader.batch([1], [0])
    assert np.array_equal(alone["input_ids"][0], a["input_ids"][1])
    # whole words: a predicted piece's word-continuation neighbours are predicted too
    tokenizer = load_tokenizer(mlm_corpus / "tokenizer")
    starts = tokenizer.word_start_table()
    masked = total = 0
    for i in range(len(reader)):
        example = reader.example(i, epoch=3)
        positions, labels = set(example["mlm_positions"]), example["mlm_labels"]
        original = list(example["input_ids"])
        for p, label in zip(example["mlm_positions"], labels):
            original[p] = label
        for p in positions:
            if p + 1 < len(original) - 1 and not starts[original[p + 1]]:
                assert p + 1 in positions
        masked += len(positions)
        total += len(original)
    assert 0.12 < masked / total < 0.16


def test_pretrain_on_a_dynamic_mlm_corpus_resumes_exactly(mlm_corpus, tmp_path, capsys):
    args = ["pretrain", "--corpus", mlm_corpus, "--preset", "tiny", *TINY_MODEL, "--set", "train.max_steps=8",
            "--set", "train.batch_size=4", "--set", "train.log_every=2", "--set", "train.save_every=4",
            "--set", "runtime.progress=none"]
    assert cli(*args, "--out", tmp_path / "full") == 0
    records = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert train and all("nsp_loss" not in r and r["mlm_loss"] == r["loss"] for r in train)
    held_out = [r for r in records if r["split"] == "eval"][-1]
    assert "nsp_accuracy" not in held_out and held_out["mlm_accuracy"] >= 0
    # stop at step 4, resume: the same masks are drawn again, so the weights match exactly
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "final")
    shutil.rmtree(tmp_path / "resumed" / "steps" / "step-00000008")
    assert cli("pretrain", "--out", tmp_path / "resumed", "--resume") == 0
    full = load_file(str(tmp_path / "full" / "final" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "final" / "model.safetensors"))
    assert all((full[k] == resumed[k]).all() for k in full)
    capsys.readouterr()
    assert cli("eval", tmp_path / "full", "--data", mlm_corpus, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert "mlm_accuracy" in result and "nsp_accuracy" not in result
