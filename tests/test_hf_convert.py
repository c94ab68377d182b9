"""`bertcli convert` to and from Hugging Face folders: structure, round trips and bad input.

Tiny transformers models (2 layers, 32 wide) with a hand-made vocab.txt are built in the test;
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file, save_file  # noqa: E402

from bertcli.checkpoint import ENCODER_PREFIX, load_checkpoint  # noqa: E402
from bertcli.config import EvalConfig  # noqa: E402
from bertcli.errors import UserError  # noqa: E402
from bertcli.model import BertEncoder, BertForPretraining, BertForSequenceClassification  # noqa: E402
from bertcli.stages import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# [UNK] and friends away from 0-4 on purpose: their ids must come from the vocabulary.
VOCAB = (["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
         + "the movie film is was good bad not very fun ##ly ##ing , . ! ' café".split()
         + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)])
CLASSES = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification")
EXPECTED = {  # class -> (task, heads, tensors missing from the source)
    "BertModel": ("encoder", [], []),
    "BertForPreTraining": ("pretraining", ["mlm", "nsp"], []),
    "BertForMaskedLM": ("mlm", ["mlm"], ["bert.pooler.dense.weight", "bert.pooler.dense.bias"]),
    "BertForSequenceClassification": ("cls", ["classifier"], []),
}


def make_hf_folder(folder: Path, class_name: str, **config) -> Path:
    """A tiny transformers model of `class_name`, saved with save_pretrained, plus vocab.txt."""
    settings = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=64)
    settings.update(config)
    torch.manual_seed(0)
    model = getattr(transformers, class_name)(transformers.BertConfig(**settings))
    with torch.no_grad():  # biases and LayerNorms off 0/1, so a swapped name cannot hide
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                              "do_lower_case": True}))
    return folder


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hf")
    folders = {name: make_hf_folder(base / name, name) for name in CLASSES}
    folders["cls3"] = make_hf_folder(base / "cls3", "BertForSequenceClassification",
                                     id2label={0: "neg", 1: "neutral", 2: "pos"},
                                     label2id={"neg": 0, "neutral": 1, "pos": 2})
    return folders


def do_import(source: Path, out: Path) -> Path:
    return convert.run(checkpoint=source, from_format="hf", to_format=None, out=out)


def do_export(ckpt: Path, out: Path) -> Path:
    return convert.run(checkpoint=ckpt, from_format=None, to_format="hf", out=out)


@pytest.mark.parametrize("class_name", CLASSES)
def test_import_keeps_the_heads_and_loads_strictly(hf_folders, tmp_path, capsys, class_name):
    ckpt = load_checkpoint(do_import(hf_folders[class_name], tmp_path / "ckpt"))
    task, heads, missing = EXPECTED[class_name]
    assert (ckpt.task, ckpt.heads, ckpt.extra["missing"]) == (task, heads, missing)
    assert ckpt.tokenizer().backend == "wordpiece"
    assert (ckpt.tokenizer().unk_id, ckpt.tokenizer().cls_id, ckpt.tokenizer().mask_id) == (4, 5, 7)
    encoder = BertEncoder(ckpt.config)
    encoder.load_state_dict({k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()})
    if task == "pretraining":
        BertForPretraining(ckpt.config).load_state_dict(ckpt.state_dict())
    if task == "cls":
        assert ckpt.labels == ["LABEL_0", "LABEL_1"]
        BertForSequenceClassification(ckpt.config, 2).load_state_dict(ckpt.state_dict())
    err = capsys.readouterr().err
    if missing:  # never silently random: said on stderr and recorded in model.json
        assert "warning" in err and "bert.pooler.dense.weight" in err
    if task == "mlm":
        assert "next-sentence" in err and ckpt.extra["absent_heads"] == ["nsp"]


def test_labels_come_from_id2label(hf_folders, tmp_path):
    ckpt = load_checkpoint(do_import(hf_folders["cls3"], tmp_path / "ckpt"))
    assert ckpt.labels == ["neg", "neutral", "pos"]


@pytest.mark.parametrize("class_name", CLASSES)
def test_round_trip_is_bit_identical_and_loads_without_key_warnings(hf_folders, tmp_path, class_name):
    source = hf_folders[class_name]
    ckpt = do_import(source, tmp_path / "ckpt")
    exported = do_export(ckpt, tmp_path / "hf")
    before, after = load_file(str(source / "model.safetensors")), load_file(str(exported / "model.safetensors"))
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    config = json.loads((exported / "config.json").read_text())
    assert config["architectures"] == [class_name]
    model, info = getattr(transformers, class_name).from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_exported_wordpiece_tokenizer_loads_in_transformers(hf_folders, tmp_path):
    exported = do_export(do_import(hf_folders["BertModel"], tmp_path / "ckpt"), tmp_path / "hf")
    ours = transformers.AutoTokenizer.from_pretrained(exported)
    theirs = transformers.AutoTokenizer.from_pretrained(hf_folders["BertModel"])
    text = ["The movie was not very fun, café!", "a Bad FILMs ... zzz"]
    assert ours(text)["input_ids"] == theirs(text)["input_ids"]
    assert ours("the movie", "was good")["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_pytorch_bin_and_tf_era_layernorm_names(hf_folders, tmp_path):
    """bert-base-uncased's pytorch_model.bin names LayerNorm parameters gamma/beta."""
    source = tmp_path / "bin"
    shutil.copytree(hf_folders["BertForPreTraining"], source)
    state = load_file(str(source / "model.safetensors"))
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in state.items()}
    (source / "model.safetensors").unlink()
    torch.save(renamed, source / "pytorch_model.bin")
    from_bin = load_checkpoint(do_import(source, tmp_path / "a")).state_dict()
    from_safetensors = load_checkpoint(do_import(hf_folders["BertForPreTraining"], tmp_path / "b")).state_dict()
    assert sorted(from_bin) == sorted(from_safetensors)
    assert all(torch.equal(from_bin[k], from_safetensors[k]) for k in from_bin)


def test_sharded_safetensors(hf_folders, tmp_path):
    source = tmp_path / "sharded"
    model = transformers.BertModel.from_pretrained(hf_folders["BertModel"])
    model.save_pretrained(source, max_shard_size="20KB")
    assert (source / "model.safetensors.index.json").is_file()
    shutil.copy(hf_folders["BertModel"] / "vocab.txt", source)
    ckpt = load_checkpoint(do_import(source, tmp_path / "ckpt"))
    reference = load_checkpoint(do_import(hf_folders["BertModel"], tmp_path / "ref")).state_dict()
    assert all(torch.equal(ckpt.state_dict()[k], reference[k]) for k in reference)


def test_imported_tokenizer_is_a_tokenizer_folder(hf_folders, tmp_path):
    """`bertcli build-corpus --tokenizer CKPT/tokenizer` prepares continued pretraining."""
    from bertcli import artifacts
    from bertcli.tokenizer import load_tokenizer

    ckpt = do_import(hf_folders["BertForMaskedLM"], tmp_path / "ckpt")
    manifest = artifacts.require(ckpt / "tokenizer", "tokenizer")
    assert manifest["fingerprint"] == load_tokenizer(ckpt / "tokenizer").fingerprint()


def test_imported_model_fine_tunes(hf_folders, tmp_path):
    """A converted checkpoint goes through `bertcli finetune` and `bertcli eval` like any other."""
    from bertcli.config import FinetuneConfig, TaskDataConfig, TrainConfig
    from bertcli.stages import evaluate, finetune

    ckpt = do_import(hf_folders["BertForMaskedLM"], tmp_path / "ckpt")
    rows = ["sentence\tlabel"] + [f"the movie was {'good' if i % 2 else 'bad'} fun\t{i % 2}" for i in range(16)]
    data = tmp_path / "train.tsv"
    data.write_text("\n".join(rows) + "\n")
    cfg = FinetuneConfig(init=str(ckpt), out=str(tmp_path / "ft"),
                         data=TaskDataConfig(train=str(data), dev=str(data), max_seq_len=16),
                         train=TrainConfig(max_steps=2, batch_size=8, log_every=1))
    run = finetune.run(cfg)
    metrics = evaluate.run(EvalConfig(checkpoint=str(run), data=str(data)))
    assert 0 <= metrics["accuracy"] <= 1


# ------------------------------------------------------------------------------ bad input


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickle_with_objects(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    torch.save({"weights": argparse.Namespace(evil=True)}, folder / "pytorch_model.bin")


def _truncated_pickle(folder: Path) -> None:
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    _truncate(folder / "pytorch_model.bin")


def _wrong_shape(folder: Path) -> None:
    path = folder / "model.safetensors"
    state = load_file(str(path))
    state["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(48, 32)
    save_file(state, str(path), metadata={"format": "pt"})


def _extra_tensor(folder: Path) -> None:
    path = folder / "model.safetensors"
    state = load_file(str(path))
    state["qa_outputs.weight"] = torch.zeros(2, 32)
    save_file(state, str(path), metadata={"format": "pt"})


BAD_INPUTS = {
    "no config.json": (lambda f: (f / "config.json").unlink(), "", "no config.json"),
    "config not JSON": (lambda f: (f / "config.json").write_text("{oops"), "config.json", "not valid JSON"),
    "another model type": (lambda f: _edit_config(f, model_type="roberta"), "config.json", "'roberta'"),
    "tanh GELU": (lambda f: _edit_config(f, hidden_act="gelu_new"), "config.json", "hidden_act"),
    "relative positions": (lambda f: _edit_config(f, position_embedding_type="relative_key"), "config.json",
                           "position_embedding_type"),
    "token classifier": (lambda f: _edit_config(f, architectures=["BertForTokenClassification"]), "config.json",
                         "BertForTokenClassification is not supported"),
    "no weights": (lambda f: (f / "model.safetensors").unlink(), "", "no model.safetensors or pytorch_model.bin"),
    "truncated safetensors": (lambda f: _truncate(f / "model.safetensors"), "model.safetensors", "truncated"),
    "pickle with objects": (_pickle_with_objects, "pytorch_model.bin", "weights_only=True) refused"),
    "truncated pickle": (_truncated_pickle, "pytorch_model.bin", "truncated or damaged"),
    "shape mismatch": (_wrong_shape, "model.safetensors",
                       "'encoder.layer.1.intermediate.dense.weight' has shape [48, 32], expected [64, 32]"),
    "layers in config and file disagree": (lambda f: _edit_config(f, num_hidden_layers=3), "model.safetensors",
                                           "missing, e.g. encoder.layer.2.attention.output.dense.weight"),
    "unknown tensor": (_extra_tensor, "model.safetensors", "qa_outputs.weight"),
    "vocab size mismatch": (lambda f: (f / "vocab.txt").write_text("\n".join(VOCAB + ["extra"]) + "\n"),
                            "vocab.txt", f"{len(VOCAB) + 1} tokens but config.json has vocab_size {len(VOCAB)}"),
    "no tokenizer": (lambda f: (f / "vocab.txt").unlink(), "", "no tokenizer.json or vocab.txt"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_error_and_writes_nothing(hf_folders, tmp_path, case):
    mutate, file_name, phrase = BAD_INPUTS[case]
    source = tmp_path / "src"
    shutil.copytree(hf_folders["BertModel"], source)
    mutate(source)
    out = tmp_path / "out" / "ckpt"
    with pytest.raises(UserError) as error:
        do_import(source, out)
    message = str(error.value)
    assert str(source / file_name) in message and phrase in message and "\n" not in message
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir()))  # no staging folder left behind


def test_source_that_is_not_a_folder(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(UserError, match="not a folder"):
        do_import(path, tmp_path / "out")


def test_format_flags_are_checked(tmp_path):
    with pytest.raises(UserError, match="exactly one"):
        convert.run(checkpoint=tmp_path, from_format="hf", to_format="hf", out=tmp_path / "o")
    with pytest.raises(UserError, match="unknown format 'tflite'"):
        convert.run(checkpoint=tmp_path, from_format=None, to_format="tflite", out=tmp_path / "o")


def test_cli_exit_code_2_and_one_line(tmp_path):
    (tmp_path / "hf").mkdir()
    result = subprocess.run([sys.executable, "-m", "bertcli", "convert", "--from", "hf", str(tmp_path / "hf"),
                             "--out", str(tmp_path / "ckpt")], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no config.json" in result.stderr
    assert not (tmp_path / "ckpt").exists()
