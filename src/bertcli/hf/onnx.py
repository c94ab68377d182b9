"""ONNX: a bertcli model as an ONNX graph, checked against PyTorch, and ONNX Runtime in PyTorch's place.

The graph takes input_ids, token_type_ids and attention_mask (int64, batch x sequence, both axes
dynamic) and gives what the PyTorch model gives: last_hidden_state and pooler_output for an encoder
(a pretrained or imported checkpoint), the task head's output (logits) for a fine-tuned one. It is
written by torch's TorchScript-based exporter as plain opset-17 operators, so any ONNX runtime
reads it; ONNX Runtime applies its own graph optimisations (ORT_ENABLE_ALL) when a session opens.
Its offline transformer optimizer (fused Attention/SkipLayerNorm contrib ops) showed no consistent
gain on 2 CPU cores (experiments/onnx_fusion.py) and would tie the graph to ONNX Runtime, so it is
not used. The int8
variant quantises every MatMul's weights per output channel (dynamic quantisation: activations are
quantised per batch, so no calibration set is needed).

onnx and onnxruntime are the `bertcli[onnx]` extra; nothing else in bertcli imports them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertcli.errors import UserError

INPUTS = ("input_ids", "token_type_ids", "attention_mask")
ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
OPSET = 17
# How a command's summary line names the engine that ran the model.
RUNTIME_NOTES = {"torch": "", "onnx": ", ONNX Runtime fp32", "onnx-int8": ", ONNX Runtime int8"}
# Sentences of many lengths for the export's parity check: padded together, so the check covers
# the attention mask as well as the arithmetic.
PARITY_TEXTS = (
    "The cat sat on the mat.",
    "A quiet morning in the old town, before the shops open and the streets fill with people.",
    "No.",
    "Transformers read a whole sentence at once, so every word sees every other word in both directions.",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity.",
    "Prices rose 3.5 % in March (after 2.9 % in February), the office said on Tuesday.",
    "Où est la gare ?",
    "He said: \"well, that's that\" - and left.",
)


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError("ONNX export and --runtime onnx need onnx and onnxruntime: "
                        "pip install 'bertcli[onnx]' (or: pip install onnx onnxruntime)") from None


class _EncoderGraph(nn.Module):
    outputs = ("last_hidden_state", "pooler_output")

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.encoder(input_ids, token_type_ids, attention_mask)


class _TaskGraph(nn.Module):
    outputs = ("logits",)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model(input_ids, token_type_ids, attention_mask)


def graph_module(model: nn.Module, is_encoder: bool) -> nn.Module:
    return (_EncoderGraph if is_encoder else _TaskGraph)(model).eval()


def export_graph(module: nn.Module, path: Path, vocab_size: int) -> None:
    """Write `module` (from graph_module) to `path` with dynamic batch and sequence axes."""
    example = tuple(torch.zeros((2, 8), dtype=torch.long) for _ in INPUTS)
    example[0][:, :] = torch.arange(8) % max(vocab_size, 1)
    example[2][:, :] = 1
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    axes.update({name: {0: "batch", 1: "sequence"} if name != "pooler_output" else {0: "batch"}
                 for name in module.outputs})
    if module.outputs == ("logits",):
        axes["logits"] = {0: "batch"}  # a token-level head adds its own sequence axis below
        with torch.no_grad():
            if module(*example).dim() == 3:
                axes["logits"] = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, example, str(path), input_names=list(INPUTS), output_names=list(module.outputs),
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        except TypeError:  # a torch without the `dynamo` switch exports TorchScript anyway
            torch.onnx.export(module, example, str(path), input_names=list(INPUTS), output_names=list(module.outputs),
                              dynamic_axes=axes, opset_version=OPSET)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8: MatMul weights per output channel (signed), activations per batch."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's advice to pre-process goes to the root logger
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)


class OnnxModule(nn.Module):
    """An ONNX Runtime session behind the call PyTorch code makes of the model it replaces:
    model(input_ids, token_type_ids, attention_mask) -> a tensor, or a tuple of them (CPU)."""

    def __init__(self, path: Path, threads: int | None = None):
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = Path(path)
        # A model without segment embeddings (the modern block) ignores token_type_ids, and the
        # exporter drops an input the graph never reads, so feed only what the graph takes.
        self.inputs = [i.name for i in self.session.get_inputs()]
        # forward_all and embed find their device through parameters(): this one says CPU
        self._where = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        feed = {name: tensor.detach().cpu().numpy().astype(np.int64, copy=False)
                for name, tensor in zip(INPUTS, (input_ids, token_type_ids, attention_mask)) if name in self.inputs}
        outputs = [torch.from_numpy(array) for array in self.session.run(None, feed)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def parity_inputs(tokenizer, max_seq_len: int, texts=PARITY_TEXTS) -> tuple[torch.Tensor, ...]:
    """The parity texts as one padded batch: input_ids, token_type_ids, attention_mask."""
    bodies = tokenizer.encode_batch(list(texts))
    ids = [[tokenizer.cls_id, *body[:max_seq_len - 2], tokenizer.sep_id] for body in bodies]
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), tokenizer.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
    return input_ids, torch.zeros_like(input_ids), mask


@dataclass
class Parity:
    worst: dict[str, float]  # output name -> largest absolute difference on real positions
    cosine: float  # smallest cosine between PyTorch's and the graph's vectors (first output, real positions)

    def to_dict(self) -> dict:
        return {"max_abs_diff": self.worst, "min_cosine": self.cosine}


@torch.no_grad()
def compare(reference: nn.Module, candidate: nn.Module, inputs: tuple[torch.Tensor, ...], names) -> Parity:
    ours = reference(*inputs)
    theirs = candidate(*inputs)
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    real = inputs[2].bool()
    worst, cosine = {}, 1.0
    for index, (name, a, b) in enumerate(zip(names, ours, theirs)):
        a, b = a.float(), b.float()
        if a.dim() >= 2 and a.shape[:2] == real.shape:  # per-token: padded positions are not outputs
            a, b = a[real], b[real]
        worst[name] = float((a - b).abs().max()) if a.numel() else 0.0
        if index == 0 and a.numel():
            flat_a, flat_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
            cosine = float(torch.nn.functional.cosine_similarity(flat_a, flat_b, dim=-1).min())
    return Parity(worst, cosine)


def build_graphs(module: nn.Module, folder: Path, config, int8: bool) -> None:
    """model.onnx and, with `int8`, model_int8.onnx (quantised from it), in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    export_graph(module, folder / ONNX_FILE, config.vocab_size)
    if int8:
        quantize_int8(folder / ONNX_FILE, folder / INT8_FILE)


class TemporaryGraph:
    """A graph built for one command (`embed --runtime onnx`), removed when the command ends."""

    def __init__(self, module: nn.Module, config, int8: bool):
        require_onnx()
        self._folder = tempfile.TemporaryDirectory(prefix="bertcli-onnx-")
        folder = Path(self._folder.name)
        build_graphs(module, folder, config, int8)
        self.path = folder / (INT8_FILE if int8 else ONNX_FILE)

    def module(self) -> OnnxModule:
        return OnnxModule(self.path)

    def close(self) -> None:
        self._folder.cleanup()


def graph_key(ckpt, is_encoder: bool) -> str | None:
    """What a checkpoint's graph depends on: its weights and model.json, the graph's kind, and the
    versions that write it; None when the checkpoint records no weights checksum."""
    import hashlib

    from bertcli import __version__, artifacts

    weights = (artifacts.read_manifest(ckpt.folder) or {}).get("weights_sha256")
    model_json = ckpt.folder / "model.json"
    if not weights or not model_json.is_file():
        return None
    digest = hashlib.sha256(f"{weights}|{'encoder' if is_encoder else 'task'}|{OPSET}|{torch.__version__}|"
                            f"{__version__}|".encode() + model_json.read_bytes())
    return digest.hexdigest()[:32]


def cached_graph(module: nn.Module, config, int8: bool, key: str) -> Path | None:
    """The graph of `key` in bertcli's cache, built there the first time (in a staging folder, then
    moved in, so a killed build leaves nothing that looks finished); None where the cache cannot
    be written."""
    from bertcli.cache import cache_dir

    folder = cache_dir() / "onnx" / key
    path = folder / (INT8_FILE if int8 else ONNX_FILE)
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".build-"))
    except OSError:
        return None
    try:
        build_graphs(module, staging, config, int8)
        for built in (ONNX_FILE, INT8_FILE):
            if (staging / built).is_file() and not (folder / built).is_file():
                os.replace(staging / built, folder / built)
    except OSError:
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path if path.is_file() else None


@contextlib.contextmanager
def runtime_model(model: nn.Module, is_encoder: bool, config, runtime: str, key: str | None = None):
    """`model` itself for runtime "torch"; for "onnx"/"onnx-int8" an OnnxModule running a graph of
    it: from bertcli's cache when `key` (graph_key) names one, so that only a checkpoint's first
    command pays for the export, else built for this command and removed after it."""
    if runtime == "torch":
        yield model
        return
    require_onnx()
    int8 = runtime == "onnx-int8"
    module = graph_module(model.cpu(), is_encoder)
    path = cached_graph(module, config, int8, key) if key else None
    if path is not None:
        yield OnnxModule(path)
        return
    graph = TemporaryGraph(module, config, int8=int8)
    try:
        yield graph.module()
    finally:
        graph.close()
