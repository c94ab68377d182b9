"""ONNX export and the ONNX Runtime path of embed and predict (issue 21): parity with PyTorch at
export and at run time, dynamic batch and sequence axes, and the one-line refusals."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from conftest import cli

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["the cat sat on the mat", "a", "one more line of text that is longer than the others by far", ""]


@pytest.fixture(scope="module")
def exports(tiny_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    assert cli("convert", tiny_world.run, "--to", "onnx", "--out", root / "encoder") == 0
    assert cli("convert", tiny_world.ft, "--to", "onnx", "--out", root / "cls") == 0
    return root


def test_export_folder_and_its_recorded_parity(exports):
    for name, outputs in (("encoder", ["last_hidden_state", "pooler_output"]), ("cls", ["logits"])):
        folder = exports / name
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["kind"] == "onnx-export" and manifest["graph_outputs"] == outputs
        assert {"model.onnx", "model_int8.onnx", "model.json", "tokenizer"} <= {p.name for p in folder.iterdir()}
        fp32 = manifest["parity"]["model.onnx"]
        assert set(fp32["max_abs_diff"]) == set(outputs) and max(fp32["max_abs_diff"].values()) < 1e-4
        assert manifest["parity"]["model_int8.onnx"]["min_cosine"] > 0.99


def test_graph_has_dynamic_batch_and_sequence_axes(exports, tiny_world):
    import onnxruntime
    import torch

    from bertcli.checkpoint import load_checkpoint, load_encoder

    session = onnxruntime.InferenceSession(str(exports / "encoder" / "model.onnx"), providers=["CPUExecutionProvider"])
    encoder = load_encoder(load_checkpoint(tiny_world.run))
    for batch, length in ((1, 5), (7, 31)):
        ids = torch.randint(5, 300, (batch, length))
        mask = torch.ones_like(ids)
        mask[-1, length // 2:] = 0
        hidden, pooled = session.run(None, {"input_ids": ids.numpy(), "token_type_ids": np.zeros_like(ids.numpy()),
                                            "attention_mask": mask.numpy()})
        with torch.no_grad():
            ours, ours_pooled = encoder(ids, None, mask)
        assert hidden.shape == (batch, length, encoder.config.hidden_size)
        real = mask.bool().numpy()
        assert np.abs(hidden[real] - ours.numpy()[real]).max() < 1e-4
        assert np.abs(pooled - ours_pooled.numpy()).max() < 1e-4


def _vectors(capsys, *args) -> np.ndarray:
    assert cli("embed", *args) == 0
    return np.array([json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()])


def test_embed_runtime_onnx_gives_pytorch_vectors(tiny_world, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    torch_vectors = _vectors(capsys, tiny_world.run, text, "--normalize")
    onnx_vectors = _vectors(capsys, tiny_world.run, text, "--normalize", "--runtime", "onnx", "--batch-size", 2)
    int8_vectors = _vectors(capsys, tiny_world.run, text, "--normalize", "--runtime", "onnx-int8")
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 32)
    assert np.abs(onnx_vectors - torch_vectors).max() < 1e-5
    assert (int8_vectors * torch_vectors).sum(axis=1).min() > 0.99  # cosines of unit vectors


def test_predict_runtime_onnx_gives_pytorch_predictions(tiny_world, capsys):
    lines = tiny_world.dev.read_text().splitlines()[1:]
    text = tiny_world.root / "predict-onnx.txt"
    text.write_text("\n".join(line.split("\t")[0] for line in lines) + "\n")
    results = {}
    for runtime in ("torch", "onnx"):
        assert cli("predict", tiny_world.ft, text, "--runtime", runtime) == 0
        results[runtime] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in results["onnx"]] == [r["label"] for r in results["torch"]]
    for ours, theirs in zip(results["torch"], results["onnx"]):
        for label, p in ours["probabilities"].items():
            assert abs(theirs["probabilities"][label] - p) < 1e-5


@pytest.mark.parametrize("args, message", [
    (["--runtime", "onnx", "--fast"], "--fast is PyTorch's int8; with --runtime onnx-int8 leave it out"),
    (["--runtime", "onnx", "--layers", "embeddings"], "--layers embeddings reads inner layers"),
    (["--runtime", "onnx", "--device", "cuda"], "--runtime onnx runs on the CPU"),
    (["--runtime", "tensorrt"], "runtime"),
])
def test_runtime_refusals_are_one_line(tiny_world, capsys, args, message):
    assert cli("embed", tiny_world.run, tiny_world.text, *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err


def test_onnx_is_an_export_format_only(tiny_world, tmp_path, capsys):
    assert cli("convert", "--from", "onnx", tiny_world.run, "--out", tmp_path / "x") == 2
    assert "onnx is an export format here" in capsys.readouterr().err


def test_missing_onnx_packages_say_what_to_install(tiny_world, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name.split(".")[0] in ("onnx", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert cli("convert", tiny_world.run, "--to", "onnx", "--out", tmp_path / "x") == 2
    assert "pip install 'bertcli[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_checkpoints_graph_is_built_once_into_the_cache(tiny_world, tmp_path, capsys, monkeypatch):
    from bertcli.checkpoint import load_checkpoint
    from bertcli.hf import onnx

    monkeypatch.setenv("BERTCLI_CACHE", str(tmp_path / "cache"))
    text = tmp_path / "in.txt"
    text.write_text("\n".join(TEXTS) + "\n")
    first = _vectors(capsys, tiny_world.run, text, "--runtime", "onnx-int8")
    key = onnx.graph_key(load_checkpoint(tiny_world.run), True)
    folder = tmp_path / "cache" / "onnx" / key
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx", "model_int8.onnx"]  # no staging left
    built = (folder / "model_int8.onnx").stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(onnx, "export_graph", no_export)
    second = _vectors(capsys, tiny_world.run, text, "--runtime", "onnx-int8")
    assert np.array_equal(first, second) and (folder / "model_int8.onnx").stat().st_mtime_ns == built
    assert onnx.graph_key(load_checkpoint(tiny_world.ft), True) != key  # other weights, another graph
