"""Texts longer than the model's window (issue 21): truncation is counted and said; --long-inputs
window reads them whole as overlapping windows whose outputs are averaged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertcli.long_inputs import pool_windows, windows
from conftest import cli


@pytest.mark.parametrize("length, width, stride", [(5, 8, 2), (8, 8, 2), (9, 8, 2), (40, 8, 3), (41, 10, 0)])
def test_windows_cover_the_body_with_the_given_overlap(length, width, stride):
    body = list(range(length))
    parts = windows(body, width, stride)
    assert all(len(p) <= width for p in parts)
    assert sorted(set(t for p in parts for t in p)) == body  # every token in some window
    assert parts[0][0] == 0 and parts[-1][-1] == length - 1
    if length <= width:
        assert parts == [body]
    for left, right in zip(parts, parts[1:-1]):  # all but the last step by width - stride
        assert right[0] - left[0] == width - stride


def test_pool_windows_weights_and_groups():
    outputs = [np.array([1.0, 0.0]), np.array([3.0, 2.0]), np.array([5.0, 5.0])]
    pooled = pool_windows(outputs, [0, 0, 1], 2, weights=[1, 3, 2])
    assert np.allclose(pooled[0], [2.5, 1.5]) and np.allclose(pooled[1], [5.0, 5.0])


def _long_text(words: int) -> str:
    return " ".join(["the cat sat on the mat and looked at the door"] * (words // 11 + 1))


def test_embed_window_averages_window_vectors(tiny_world):
    from bertcli.checkpoint import load_checkpoint, load_encoder
    from bertcli.model.heads import masked_mean
    from bertcli.stages.embed import embed_texts

    ckpt = load_checkpoint(tiny_world.run)
    encoder, tokenizer = load_encoder(ckpt), ckpt.tokenizer()
    short, long = "the cat sat", _long_text(200)
    body = tokenizer.encode(long)
    assert len(body) > 62
    (v_short_w, v_long_w), truncated, _ = embed_texts(encoder, tokenizer, [short, long], "mean", False, 8, 64,
                                                      window_stride=16)
    (v_short_t, v_long_t), truncated_t, _ = embed_texts(encoder, tokenizer, [short, long], "mean", False, 8, 64)
    assert truncated == 0 and truncated_t == 1
    assert np.allclose(v_short_w, v_short_t, atol=1e-6)
    expected, total = 0, 0
    with torch.no_grad():
        for window in windows(body, 62, 16):
            ids = torch.tensor([[tokenizer.cls_id, *window, tokenizer.sep_id]])
            hidden, _ = encoder(ids, None, torch.ones_like(ids))
            expected = expected + masked_mean(hidden, torch.ones_like(ids))[0].numpy() * ids.shape[1]
            total += ids.shape[1]
    assert np.allclose(v_long_w, expected / total, atol=1e-5)
    assert not np.allclose(v_long_w, v_long_t, atol=1e-3)


def test_embed_says_how_many_lines_were_truncated(tiny_world, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text(f"short\n{_long_text(200)}\n{_long_text(300)}\n")
    assert cli("embed", tiny_world.run, text) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: 2 of 3 lines were longer than 64 tokens and were truncated" in err
    assert "--long-inputs window" in err
    assert cli("embed", tiny_world.run, text, "--long-inputs", "window", "--normalize") == 0
    out, err = capsys.readouterr()
    vectors = np.array([json.loads(line)["embedding"] for line in out.splitlines()])
    assert vectors.shape[0] == 3 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "truncated" not in err


def test_predict_window_averages_window_logits(tiny_world, tmp_path, capsys):
    from bertcli.checkpoint import load_checkpoint
    from bertcli.tasks.loading import load_task_model

    long = _long_text(200)
    text = tmp_path / "in.txt"
    text.write_text(f"the cat sat\n{long}\n")
    results = {}
    for mode in ("truncate", "window"):
        assert cli("predict", tiny_world.ft, text, "--long-inputs", mode, "--stride", 8) == 0
        out, err = capsys.readouterr()
        results[mode] = [json.loads(line) for line in out.splitlines()]
        assert ("1 of 2 lines were longer" in " ".join(err.split())) == (mode == "truncate")
    assert results["window"][0] == results["truncate"][0]
    ckpt = load_checkpoint(tiny_world.ft)
    loaded, tokenizer = load_task_model(ckpt, None, "test"), ckpt.tokenizer()
    width = loaded.settings.max_seq_len - 2
    logits = []
    with torch.no_grad():
        for window in windows(tokenizer.encode(long), width, 8):
            ids = torch.tensor([[tokenizer.cls_id, *window, tokenizer.sep_id]])
            logits.append(loaded.model(ids, torch.zeros_like(ids), torch.ones_like(ids))[0].numpy())
    mean = np.mean(logits, axis=0)
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    got = [results["window"][1]["probabilities"][label] for label in loaded.labels]
    assert np.allclose(got, expected, atol=2e-6)


@pytest.mark.parametrize("command, message", [
    (["embed", "{run}", "{text}", "--long-inputs", "window", "--tokens"], "with --tokens use truncate"),
    (["embed", "{run}", "{text}", "--long-inputs", "window", "--stride", "62"], "--stride 62: windows of 62 tokens"),
])
def test_window_refusals_are_one_line(tiny_world, tmp_path, capsys, command, message):
    text = tmp_path / "in.txt"
    text.write_text(_long_text(200) + "\n")
    args = [a.format(run=tiny_world.run, text=text) for a in command]
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and message in err


@pytest.mark.parametrize("lengths, width, stride", [([1] * 5, 8, 2), ([2, 3, 1, 4, 2, 2, 3, 1], 6, 2),
                                                     ([9, 1, 1], 4, 1), ([1] * 30, 7, 0)])
def test_word_windows_keep_words_whole_and_cover_every_word(lengths, width, stride):
    from bertcli.long_inputs import word_windows

    pieces = [[7] * n for n in lengths]
    spans = word_windows(pieces, width, stride)
    covered = sorted({w for first, end in spans for w in range(first, end)})
    assert covered == list(range(len(pieces)))
    for first, end in spans:
        assert end > first
        assert sum(lengths[first:end]) <= width or end - first == 1  # only a lone long word overflows
    assert all(b[0] > a[0] for a, b in zip(spans, spans[1:]))  # always moves on


def test_ner_window_tags_every_word_from_its_best_window(tiny_world):
    from bertcli.long_inputs import windowed_word_outputs, word_windows
    from bertcli.model import BertConfig
    from bertcli.tasks import get_task
    from bertcli.tasks.base import TaskSettings
    from bertcli.tasks.words import word_pieces
    from bertcli.tokenizer import load_tokenizer
    from bertcli.train.evaluation import forward_all

    task, tokenizer = get_task("ner"), load_tokenizer(tiny_world.tok)
    labels = ["O", "B-PER", "I-PER"]
    settings = TaskSettings(max_seq_len=16)
    config = BertConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_id,
                                    hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                    max_position_embeddings=64)
    torch.manual_seed(0)
    model = task.build_model(config, labels, settings, 0.0).eval()
    long = "Angela Merkel met the mayor of Paris and then the mayor of Berlin and then Angela again in the end"
    data = task.read_lines([(1, "Angela met Paris"), (2, long)], "<test>", settings)
    outputs = windowed_word_outputs(model, data, tokenizer, 16, 4, 8)
    assert [len(o) for o in outputs] == [len(w) for w in data.words]
    encoded = task.encode(data, tokenizer, settings, labels)
    direct = forward_all(model, encoded.encoded, tokenizer.pad_id, 8)
    assert np.allclose(outputs[0], direct[0][encoded.encoded.meta[0]], atol=1e-5)  # a sentence that fits
    assert (encoded.encoded.meta[1] < 0).any()  # the long one does not fit: truncation would tag its end "O"
    pieces = word_pieces(tokenizer, data.words[1])
    spans = word_windows(pieces, 14, 4)
    assert len(spans) > 1
    first, end = spans[-1]
    ids = [tokenizer.cls_id, *[p for word in pieces[first:end] for p in word], tokenizer.sep_id]
    with torch.no_grad():
        logits = model(torch.tensor([ids]), torch.zeros(1, len(ids), dtype=torch.long),
                       torch.ones(1, len(ids), dtype=torch.long))[0].numpy()
    last_word_first_piece = len(ids) - 1 - len(pieces[-1])
    assert np.allclose(outputs[1][-1], logits[last_word_first_piece], atol=1e-5)  # the end from the last window


def test_a_2000_token_text_through_windowed_predict_is_one_line_out_per_line_in(tiny_world, tmp_path, capsys):
    from bertcli.tokenizer import load_tokenizer

    long = _long_text(2200)
    assert len(load_tokenizer(tiny_world.tok).encode(long)) >= 2000
    text = tmp_path / "in.txt"
    text.write_text(f"{long}\nshort one\n\n{long}\n")
    assert cli("predict", tiny_world.ft, text, "--long-inputs", "window", "--stride", 16) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4
    records = [json.loads(line) for line in out]
    assert records[0] == records[3] and "label" in records[1]
