"""tokenize -> build-corpus -> pretrain -> finetune -> eval through the CLI, on a tiny model."""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from demo_inputs import labelled  # noqa: E402

from conftest import cli

TINY_MODEL = ["--set", "model.hidden_size=32", "--set", "model.num_layers=2", "--set", "model.num_heads=2",
              "--set", "model.intermediate_size=64", "--set", "model.max_position_embeddings=64"]




@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "corpus"
    code = cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 2, "--seed", 3, "--set", "eval_fraction=0.2")
    assert code == 0
    return out


def pretrain_args(corpus: Path, out: Path, *extra: str) -> list:
    return ["pretrain", "--corpus", corpus, "--out", out, "--preset", "tiny", *TINY_MODEL,
            "--set", "train.max_steps=12", "--set", "train.batch_size=8", "--set", "train.log_every=2",
            "--set", "train.save_every=6", "--set", "train.eval_every=6", "--set", "train.eval_examples=16",
            "--set", "runtime.progress=none", "--set", "optim.lr=1e-3", *extra]


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("pretrain") / "run"
    assert cli(*pretrain_args(corpus, out)) == 0
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_pretrain_run_folder(pretrain_run):
    assert {p.name for p in pretrain_run.iterdir()} >= {"manifest.json", "config.yaml", "metrics.jsonl", "steps", "final"}
    assert sorted(p.name for p in (pretrain_run / "steps").iterdir()) == ["step-00000006", "step-00000012"]
    final = pretrain_run / "final"
    assert {p.name for p in final.iterdir()} >= {"model.safetensors", "model.json", "tokenizer", "manifest.json"}
    weights = load_file(str(final / "model.safetensors"))
    assert weights["bert.embeddings.word.weight"].shape == (600, 32)
    assert "mlm.bias" in weights and "nsp.linear.weight" in weights
    train = [r for r in read_jsonl(pretrain_run / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert set(train[0]) >= {"step", "loss", "mlm_loss", "nsp_loss", "lr", "tokens_per_s"}
    assert train[0]["loss"] == pytest.approx(train[0]["mlm_loss"] + train[0]["nsp_loss"], rel=1e-5)
    evals = [r for r in read_jsonl(pretrain_run / "metrics.jsonl") if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [6, 12]
    assert 0 <= evals[-1]["mlm_accuracy"] <= 1 and evals[-1]["perplexity"] > 1


def test_resume_continues_exactly(pretrain_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(pretrain_run, copy)
    shutil.rmtree(copy / "final")
    shutil.rmtree(copy / "steps" / "step-00000012")
    assert cli("pretrain", "--out", copy, "--resume", "--set", "runtime.progress=none") == 0
    original = load_file(str(pretrain_run / "final" / "model.safetensors"))
    resumed = load_file(str(copy / "final" / "model.safetensors"))
    assert all((original[k] == resumed[k]).all() for k in original)
    def without_timing(rows):
        return [{k: v for k, v in row.items() if k not in ("tokens_per_s", "peak_memory_mib")} for row in rows]

    assert without_timing(read_jsonl(copy / "metrics.jsonl")) == without_timing(read_jsonl(pretrain_run / "metrics.jsonl"))


def test_new_run_into_existing_run_is_refused(pretrain_run, corpus, capsys):
    assert cli(*pretrain_args(corpus, pretrain_run)) == 2
    assert "holds a run already; continue it with --resume" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sentiment")
    rng = random.Random(0)
    paths = []
    for split, count in (("train", 96), ("dev", 32)):
        path = folder / f"{split}.tsv"
        path.write_text("sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in labelled(rng, count)))
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def finetune_run(tmp_path_factory, pretrain_run, sentiment) -> Path:
    out = tmp_path_factory.mktemp("ft") / "ft"
    train, dev = sentiment
    code = cli("finetune", "--task", "cls", "--init", pretrain_run, "--train", train, "--dev", dev, "--out", out,
               "--epochs", 2, "--batch-size", 16, "--lr", "1e-3", "--max-seq-len", 32,
               "--set", "runtime.progress=none")
    assert code == 0
    return out


def test_finetune_folder_drops_pretraining_heads(finetune_run, pretrain_run):
    for name in ("best", "final"):
        weights = load_file(str(finetune_run / name / "model.safetensors"))
        assert "classifier.linear.weight" in weights and weights["classifier.linear.weight"].shape == (2, 32)
        assert not any(k.startswith(("mlm.", "nsp.")) for k in weights)
    meta = json.loads((finetune_run / "best" / "model.json").read_text())
    assert meta["task"] == "cls" and meta["labels"] == ["0", "1"]
    pretrained = json.loads((pretrain_run / "final" / "model.json").read_text())["config"]
    assert meta["config"] == pretrained  # the architecture of the model it came from
    dev = [r for r in read_jsonl(finetune_run / "metrics.jsonl") if r.get("split") == "dev"]
    assert [r["epoch"] for r in dev] == [1.0, 2.0]


def test_eval_json_on_classification_and_corpus(finetune_run, pretrain_run, corpus, sentiment, capsys):
    capsys.readouterr()
    assert cli("eval", finetune_run, "--data", sentiment[1], "--json") == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"accuracy", "f1", "mcc"} and metrics["examples"] == 32
    best_dev = json.loads((finetune_run / "best" / "model.json").read_text())["extra"]["dev"]
    assert metrics["accuracy"] == pytest.approx(best_dev["accuracy"])
    assert cli("eval", pretrain_run / "final", "--data", corpus, "--json") == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"mlm_accuracy", "nsp_accuracy", "perplexity"} and metrics["split"] == "eval"


@pytest.mark.parametrize("args, message", [
    (["eval", "{ft}", "--data", "{corpus}"], "a cls checkpoint has no MLM/NSP heads"),
    (["eval", "{corpus}", "--data", "{corpus}"], "not a checkpoint (a corpus folder)"),
    (["finetune", "--init", "{corpus}", "--train", "{train}", "--dev", "{dev}", "--out", "{tmp}/x"], "not a checkpoint"),
    (["pretrain", "--corpus", "{tok}", "--out", "{tmp}/r"], "is a tokenizer folder, expected a corpus folder"),
    (["pretrain", "--corpus", "{tmp}/missing", "--out", "{tmp}/r"], "not found; expected a corpus folder"),
    (["pretrain", "--corpus", "{corpus}", "--out", "{tmp}/r", "--preset", "minni"], "did you mean 'mini'"),
    (["finetune", "--init", "{run}", "--train", "{train}", "--dev", "{baddev}", "--out", "{tmp}/x", "--max-seq-len", "32"], "unknown label '5'"),
    (["tokenize", "train", "--input", "{tmp}/none.txt", "--out", "{tmp}/t"], "none.txt: file not found"),
])
def test_cli_errors_are_one_line_exit_2(args, message, tmp_path, capsys, finetune_run, pretrain_run, corpus,
                                        tokenizer_dir, sentiment):
    baddev = tmp_path / "baddev.tsv"
    baddev.write_text("sentence\tlabel\ngood\t1\nodd\t5\n")
    values = {"ft": finetune_run, "run": pretrain_run, "corpus": corpus, "tok": tokenizer_dir, "tmp": tmp_path,
              "train": sentiment[0], "dev": sentiment[1], "baddev": baddev}
    capsys.readouterr()
    assert cli(*[a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_failed_finetune_keeps_the_good_folder(finetune_run, pretrain_run, sentiment, tmp_path, capsys):
    before = (finetune_run / "best" / "model.safetensors").read_bytes()
    baddev = tmp_path / "baddev.tsv"
    baddev.write_text("sentence\tlabel\ngood\t1\nodd\t5\n")
    assert cli("finetune", "--init", pretrain_run, "--train", sentiment[0], "--dev", baddev,
               "--out", finetune_run, "--max-seq-len", 32) == 2
    assert "unknown label '5'" in capsys.readouterr().err
    assert (finetune_run / "best" / "model.safetensors").read_bytes() == before
    assert not [p for p in finetune_run.parent.iterdir() if p.name.startswith(".")]


def test_tokenize_encode_decode_round_trip(tokenizer_dir, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("The if statement is used.\nwhile loops repeat\n")
    capsys.readouterr()
    assert cli("tokenize", "encode", "--tokenizer", tokenizer_dir, text) == 0
    ids = capsys.readouterr().out
    assert len(ids.splitlines()) == 2 and all(tok.isdigit() for tok in ids.split())
    (tmp_path / "ids.txt").write_text(ids)
    assert cli("tokenize", "decode", "--tokenizer", tokenizer_dir, tmp_path / "ids.txt") == 0
    assert capsys.readouterr().out == "the if statement is used.\nwhile loops repeat\n"


def test_checkpoint_tokenizer_builds_a_corpus_for_continued_pretraining(pretrain_run, text_files, tmp_path):
    out = tmp_path / "corpus2"
    assert cli("build-corpus", "--input", *text_files[:4], "--tokenizer", pretrain_run / "final" / "tokenizer",
               "--out", out, "--max-seq-len", 64, "--dupe-factor", 1) == 0
    assert cli("pretrain", "--corpus", out, "--out", tmp_path / "continued", "--init-from", pretrain_run,
               "--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "runtime.progress=none") == 0
    before = load_file(str(pretrain_run / "final" / "model.safetensors"))
    after = load_file(str(tmp_path / "continued" / "final" / "model.safetensors"))
    assert set(before) == set(after) and not (before["mlm.bias"] == after["mlm.bias"]).all()


def test_tokenizer_mismatch_between_corpus_and_model(pretrain_run, text_files, tmp_path, capsys):
    other_tok = tmp_path / "tok2"
    assert cli("tokenize", "train", "--input", *text_files, "--out", other_tok, "--vocab-size", 500) == 0
    other_corpus = tmp_path / "corpus2"
    assert cli("build-corpus", "--input", *text_files[:4], "--tokenizer", other_tok, "--out", other_corpus,
               "--max-seq-len", 64, "--dupe-factor", 1) == 0
    capsys.readouterr()
    assert cli("eval", pretrain_run, "--data", other_corpus) == 2
    assert "built with a different tokenizer than" in capsys.readouterr().err
    assert cli("pretrain", "--corpus", other_corpus, "--out", tmp_path / "r", "--init-from", pretrain_run) == 2
    assert "built with a different tokenizer than" in capsys.readouterr().err


def test_damaged_weights_are_refused(pretrain_run, corpus, tmp_path, capsys):
    copy = tmp_path / "final"
    shutil.copytree(pretrain_run / "final", copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    capsys.readouterr()
    assert cli("eval", copy, "--data", corpus) == 2
    assert "checksum differs" in capsys.readouterr().err


def test_bf16_autocast_trains(corpus, tmp_path):
    out = tmp_path / "bf16"
    assert cli("pretrain", "--corpus", corpus, "--out", out, "--preset", "tiny", *TINY_MODEL, "--dtype", "bf16",
               "--set", "train.max_steps=3", "--set", "train.batch_size=4", "--set", "runtime.progress=none") == 0
    rows = [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "train"]
    assert rows[-1]["step"] == 3 and rows[-1]["loss"] > 0


def test_gradient_accumulation_equals_one_big_batch(corpus, tmp_path):
    runs = {}
    for accum in (1, 4):
        out = tmp_path / f"accum{accum}"
        assert cli("pretrain", "--corpus", corpus, "--out", out, "--preset", "tiny", *TINY_MODEL,
                   "--set", "model.dropout=0", "--set", "model.attention_dropout=0", "--set", "train.max_steps=2",
                   "--set", "train.batch_size=8", "--set", f"train.grad_accum={accum}", "--set", "train.log_every=1",
                   "--set", "runtime.progress=none") == 0
        runs[accum] = (load_file(str(out / "final" / "model.safetensors")),
                       [r for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "train"])
    (one, one_log), (four, four_log) = runs[1], runs[4]
    for key in ("loss", "mlm_loss", "nsp_loss"):
        assert four_log[0][key] == pytest.approx(one_log[0][key], rel=1e-5)
    assert max(float((one[k] - four[k]).abs().max()) for k in one) < 1e-5


def test_output_never_replaces_another_kind_of_folder(pretrain_run, sentiment, capsys):
    before = sorted(p.name for p in pretrain_run.rglob("*"))
    capsys.readouterr()
    assert cli("finetune", "--init", pretrain_run, "--train", sentiment[0], "--dev", sentiment[1],
               "--out", pretrain_run, "--max-seq-len", 32) == 2
    assert "is a pretrain-run folder; --out may only replace a finetune-run folder" in capsys.readouterr().err
    assert sorted(p.name for p in pretrain_run.rglob("*")) == before


def test_damaged_tokenizer_settings_are_one_line(tokenizer_dir, tmp_path, capsys):
    from bertcli.tokenizer import TOKENIZER_CONFIG

    broken = tmp_path / "tok"
    shutil.copytree(tokenizer_dir, broken)
    (broken / TOKENIZER_CONFIG).write_text('{"backend": "sentencepiece", "files": ["../../etc/passwd"], '
                                                  '"special_ids": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, '
                                                  '"[SEP]": 3, "[MASK]": 4}}')
    capsys.readouterr()
    assert cli("tokenize", "encode", "--tokenizer", broken, tmp_path / "none.txt") == 2
    assert "is not a plain file name" in capsys.readouterr().err
    (broken / TOKENIZER_CONFIG).write_text("{not json")
    assert cli("tokenize", "encode", "--tokenizer", broken, tmp_path / "none.txt") == 2
    assert "damaged tokenizer settings (not JSON)" in capsys.readouterr().err
