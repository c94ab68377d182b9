"""`bertcli convert`: Hugging Face BERT folders in (`--from hf HF_DIR`) and out (`CKPT --to hf`).

Import reads config.json, the weights (model.safetensors, or pytorch_model.bin through
torch.load(weights_only=True), sharded or not) and the WordPiece tokenizer, checks every tensor
against the config, and writes a bertcli checkpoint. Export writes what transformers'
save_pretrained would: config.json, model.safetensors under the class's own key names, and a
tokenizer that AutoTokenizer loads. Both write through a staging folder, so a failure leaves nothing.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bertcli import artifacts
from bertcli.checkpoint import ENCODER_PREFIX, MODEL_JSON, WEIGHTS, load_checkpoint, load_encoder
from bertcli.errors import UserError
from bertcli.hf import onnx
from bertcli.hf.tokenizer import export_tokenizer, read_json
from bertcli.model.config import BertConfig
from bertcli.hf.imported import write_imported
from bertcli.hf.missing_weights import MISSING_WEIGHT_SEED, seeded_pooler
from bertcli.hf.bert_weights import (
    ARCHITECTURES,
    POOLER,
    TASK_HEADS,
    ConversionError,
    config_from_hf,
    config_to_hf,
    hf_names,
    required_names,
    state_from_hf,
    state_to_hf,
    unexportable,
)
from bertcli.folder_lock import writes_output
from bertcli.runtime import console
from bertcli.hf import electra_folders as convert_electra
from bertcli.hf import modernbert_folders, modernbert_weights
from bertcli.tasks import TASKS
from bertcli.tasks.loading import load_task_model

HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"
HF_PICKLE = "pytorch_model.bin"
FORMATS = ("hf", "onnx", "sentence-transformers")  # onnx, sentence-transformers: export only


@writes_output
def run(checkpoint: Path | None, from_format: str | None, to_format: str | None, out: Path,
        pooling: str = "mean", normalize: bool = False, max_seq_len: int | None = None) -> Path:
    """Import (--from hf) or export (--to hf|onnx|sentence-transformers); pooling, normalize and
    max_seq_len say what a sentence-transformers export's encode() does (as `bertcli embed`)."""
    if (from_format is None) == (to_format is None):
        raise UserError("convert: give exactly one of `--from hf HF_DIR` (import) or `CKPT --to hf` (export)")
    fmt = from_format or to_format
    if fmt not in FORMATS:
        raise UserError(f"convert: unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
    if checkpoint is None:
        what = "the Hugging Face folder to import" if from_format else "the checkpoint to export"
        raise UserError(f"convert: no source given; pass {what} as the argument")
    if from_format in ("onnx", "sentence-transformers"):
        raise UserError(f"convert: {from_format} is an export format here; import from a Hugging Face folder "
                        f"(--from hf) instead")
    if from_format:
        return import_hf(Path(checkpoint), Path(out))
    if to_format == "onnx":
        return export_onnx(Path(checkpoint), Path(out))
    if to_format == "sentence-transformers":
        return export_sentence_transformers(Path(checkpoint), Path(out), pooling, normalize, max_seq_len)
    return export_hf(Path(checkpoint), Path(out))


# ---------------------------------------------------------------- Hugging Face -> bertcli


def import_hf(hf_dir: Path, out: Path) -> Path:
    if not hf_dir.is_dir():
        raise UserError(f"{hf_dir}: not a folder; pass a Hugging Face model folder (with config.json)")
    out = artifacts.check_output_target(out, "checkpoint", inputs=[hf_dir])
    hf_config = _read_hf_config(hf_dir)
    if hf_config.get("model_type") == "electra":
        return convert_electra.import_electra(hf_dir, out, hf_config, read_hf_weights)
    if hf_config.get("model_type") == modernbert_weights.MODEL_TYPE:
        return modernbert_folders.import_modernbert(hf_dir, out, hf_config, read_hf_weights)
    try:
        config = config_from_hf(hf_config)
    except ConversionError as exc:
        raise UserError(f"{hf_dir / HF_CONFIG}: {exc}")
    architecture = _architecture(hf_dir, hf_config)

    hf_state, weights_path = read_hf_weights(hf_dir)
    labels = _labels(hf_dir, hf_config, hf_state)
    try:
        state = state_from_hf(hf_state, config, len(labels) or 2)
    except ConversionError as exc:
        raise UserError(f"{weights_path}: {exc}")
    task = _task(state, weights_path)
    if architecture and ARCHITECTURES[architecture] != task:
        console.print(f"note: config.json names {architecture}, but the weights hold a {task!r} model "
                      f"(heads: {', '.join(TASK_HEADS[task]) or 'none'}); importing what the weights hold")
    missing = _fill_missing(state, config, task, weights_path)
    extra = {"source": {"format": "hf", "path": str(hf_dir.resolve()), "weights": weights_path.name,
                        "architecture": architecture}, "missing": missing}
    if task == "mlm":
        extra["absent_heads"] = ["nsp"]
        console.print(f"note: {weights_path} has no next-sentence head (BertForMaskedLM has none); "
                      f"`bertcli pretrain --init-from` starts NSP from random initialisation")

    write_imported(hf_dir, out, state, config, task, TASK_HEADS[task], extra, labels if task == "cls" else None)
    console.print(f"imported {hf_dir} -> {out}: {task} model, {config.num_layers} layers, hidden "
                  f"{config.hidden_size}, vocab {config.vocab_size:,} (WordPiece), {len(state)} tensors")
    return out


def _read_hf_config(hf_dir: Path) -> dict:
    path = hf_dir / HF_CONFIG
    if not path.is_file():
        raise UserError(f"{hf_dir}: no {HF_CONFIG}, so not a Hugging Face model folder")
    return read_json(path)


def _architecture(hf_dir: Path, hf_config: dict) -> str | None:
    """The class config.json names, which must be one bertcli has; None when it names none."""
    names = hf_config.get("architectures") or []
    if not names:
        return None
    name = names[0]
    if name not in ARCHITECTURES:
        # BertForTokenClassification and BertForMultipleChoice have a `classifier` too: without this
        # check they would import as a sequence classifier and give wrong answers without an error.
        raise UserError(f"{hf_dir / HF_CONFIG}: architecture {name} is not supported; bertcli imports "
                        f"{', '.join(ARCHITECTURES)}")
    return name


def read_hf_weights(hf_dir: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """All tensors of a Hugging Face folder, and the file (or index) they came from."""
    for name in (HF_SAFETENSORS, HF_PICKLE):
        index = hf_dir / f"{name}.index.json"
        if (hf_dir / name).is_file():
            return _load_weights_file(hf_dir / name), hf_dir / name
        if index.is_file():
            state = {}
            for shard in sorted(set(_read_index(index).values())):
                state.update(_load_weights_file(hf_dir / shard))
            return state, index
    present = ", ".join(sorted(p.name for p in hf_dir.iterdir())) or "nothing"
    raise UserError(f"{hf_dir}: no {HF_SAFETENSORS} or {HF_PICKLE} (found: {present}); bertcli reads PyTorch "
                    f"weights only (re-save TF/Flax models with transformers' save_pretrained)")


def _read_index(path: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a valid shard index ({exc})")
    for shard in set(weight_map.values()):
        if not (path.parent / shard).is_file():
            raise UserError(f"{path}: names shard {shard}, which is not in the folder")
    return weight_map


def _load_weights_file(path: Path) -> dict[str, torch.Tensor]:
    if path.name.endswith(".safetensors"):
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise UserError(f"{path}: cannot read safetensors ({exc}); the file is truncated or damaged")
    try:
        # weights_only: a pickle can run code when loaded; tensors and plain containers only.
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message is a page of advice; the refused object's name is what matters.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        reason = f" (it names {found.group(1)})" if found else ""
        raise UserError(f"{path}: torch.load(weights_only=True) refused this pickle{reason}: it holds Python "
                        f"objects besides tensors, and loading those could run code; re-save the model with "
                        f"save_pretrained(safe_serialization=True)")
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: cannot read PyTorch weights ({reason}); the file is truncated or damaged")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a dict of tensor names to tensors (a state_dict)")
    return state


def _labels(hf_dir: Path, hf_config: dict, hf_state: dict[str, torch.Tensor]) -> list[str]:
    """Class names in id order: config.json's id2label, else LABEL_i for each classifier row."""
    id2label = hf_config.get("id2label")
    if id2label:
        try:
            ids = {int(k): str(v) for k, v in dict(id2label).items()}
        except (TypeError, ValueError):
            ids = {}
        if sorted(ids) != list(range(len(id2label))):
            raise UserError(f"{hf_dir / HF_CONFIG}: id2label must map the ids 0..n-1 to names, got {id2label!r}")
        return [ids[i] for i in range(len(ids))]
    weight = hf_state.get("classifier.weight")
    return [f"LABEL_{i}" for i in range(weight.shape[0])] if weight is not None else []


def _task(state: dict[str, torch.Tensor], weights_path: Path) -> str:
    """What the weights hold decides the task: config.json's `architectures` is often loose
    (bert-base-uncased names BertForMaskedLM but ships the NSP head too)."""
    heads = {name.split(".", 1)[0] for name in state} - {"bert"}
    if "classifier" in heads:
        if heads != {"classifier"}:
            raise UserError(f"{weights_path}: holds a classifier and pretraining heads; not a model bertcli knows")
        return "cls"
    if heads == {"mlm", "nsp"}:
        return "pretraining"
    if heads == {"mlm"}:
        return "mlm"
    if heads == {"nsp"}:
        raise UserError(f"{weights_path}: a next-sentence head without the MLM head (BertForNextSentencePrediction) "
                        f"is not supported")
    return "encoder"


def _fill_missing(state: dict[str, torch.Tensor], config: BertConfig, task: str, weights_path: Path) -> list[str]:
    """Refuse a source missing real weights; initialise a missing pooler (seeded) and say so.

    BertForMaskedLM has no pooler, but every bertcli encoder does (for NSP and classification);
    it is initialised as BERT's TF code would, recorded in model.json extra.missing, and announced.
    """
    absent = [name for name in required_names(config, task) if name not in state]
    if not absent:
        return []
    if set(absent) - set(POOLER):
        theirs = hf_names(config)
        names = [theirs[n] for n in absent if n not in POOLER]
        raise UserError(f"{weights_path}: {len(names)} tensor(s) that config.json implies are missing, e.g. "
                        f"{', '.join(names[:3])}")
    state.update(seeded_pooler(config))
    console.print(f"warning: {weights_path} has no pooler weights; {', '.join(absent)} initialised at random "
                  f"(seed {MISSING_WEIGHT_SEED}) and listed in model.json extra.missing. Mean/CLS embeddings "
                  f"and MLM are unaffected; --pooling pooler and NSP are untrained")
    return absent


# ---------------------------------------------------------------- bertcli -> Hugging Face


def export_hf(checkpoint: Path, out: Path) -> Path:
    ckpt = load_checkpoint(checkpoint)
    out = artifacts.check_output_target(out, "hf-export", inputs=[checkpoint])
    bert_blocking = unexportable(ckpt.config)
    if bert_blocking:
        return modernbert_folders.export_modernbert(ckpt, out, bert_blocking)
    if convert_electra.is_electra(ckpt):
        return convert_electra.export_electra(ckpt, out)
    if ckpt.task not in TASK_HEADS:
        raise UserError(f"{ckpt.folder}: a {ckpt.task!r} checkpoint has no Hugging Face BERT class; "
                        f"exportable tasks: {', '.join(TASK_HEADS)}")
    pooling = (ckpt.extra.get("settings") or {}).get("pooling", "cls")
    if pooling != "cls":
        raise UserError(f"{ckpt.folder}: fine-tuned with --pooling {pooling}; transformers' "
                        f"BertForSequenceClassification classifies the pooled [CLS] only, so the export would "
                        f"predict differently; fine-tune with --pooling cls to export, or serve it with bertcli")
    state = ckpt.state_dict()
    absent = [name for name in required_names(ckpt.config, ckpt.task) if name not in state]
    if absent:
        raise UserError(f"{ckpt.folder / WEIGHTS}: {len(absent)} tensor(s) missing for a {ckpt.task!r} model, "
                        f"e.g. {', '.join(absent[:3])}; the checkpoint is incomplete")
    for name in ckpt.extra.get("missing", []):
        console.print(f"warning: {name} was initialised at random when {ckpt.folder} was imported "
                      f"and is exported as it is")
    tokenizer = ckpt.tokenizer()
    with artifacts.staged_folder(out) as tmp:
        architecture, count = write_hf_files(tmp, ckpt, ckpt.task, state)
        artifacts.write_manifest(tmp, "hf-export", {"convert": {"to": "hf", "source": str(ckpt.folder)}},
                                 [ckpt.folder / WEIGHTS], architecture=architecture)
    console.print(f"exported {ckpt.folder} -> {out}: {architecture}, {count} tensors, {tokenizer.backend} tokenizer")
    return out


def write_hf_files(folder: Path, ckpt, task: str, state: dict) -> tuple[str, int]:
    """config.json, model.safetensors and the tokenizer of a transformers folder; the architecture
    and the number of tensors."""
    hf_state = state_to_hf(state, ckpt.config, task)
    hf_config = config_to_hf(ckpt.config, task, ckpt.labels if task == "cls" else [])
    # metadata format=pt: transformers checks it to know the tensors are PyTorch's
    save_file(hf_state, str(folder / HF_SAFETENSORS), metadata={"format": "pt"})
    (folder / HF_CONFIG).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
    export_tokenizer(ckpt.tokenizer(), folder, ckpt.config.max_position_embeddings)
    return hf_config["architectures"][0], len(hf_state)


# ---------------------------------------------------------------- bertcli -> sentence-transformers


def export_sentence_transformers(checkpoint: Path, out: Path, pooling: str, normalize: bool,
                                 max_seq_len: int | None) -> Path:
    """A sentence-transformers folder (BertModel + Pooling [+ Normalize]) whose
    SentenceTransformer(out).encode(texts) gives `bertcli embed --pooling P [--normalize]`'s vectors."""
    ckpt = load_checkpoint(checkpoint)
    out = artifacts.check_output_target(out, "hf-export", inputs=[checkpoint])
    blocking = unexportable(ckpt.config)
    if blocking:
        raise UserError(f"{ckpt.folder}: sentence-transformers export writes a BertModel, which this block is not: "
                        f"{'; '.join(blocking)}; export it with --to hf (ModernBERT) or --to onnx")
    if pooling not in ("mean", "cls"):
        raise UserError(f"--pooling {pooling}: sentence-transformers pools by mean or cls; BERT's tanh pooler has "
                        f"no Pooling mode there, so use --pooling mean or --pooling cls")
    positions = ckpt.config.max_position_embeddings
    length = max_seq_len or min(128, positions)  # embed's default
    if not 2 <= length <= positions:
        raise UserError(f"--max-seq-len {length}: must be between 2 and the model's {positions} positions")
    encoder = {k: v for k, v in ckpt.state_dict().items() if k.startswith(ENCODER_PREFIX)}
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    pooling_config = {"word_embedding_dimension": ckpt.config.hidden_size, "pooling_mode_cls_token": pooling == "cls",
                      "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
                      "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True}
    with artifacts.staged_folder(out) as tmp:
        write_hf_files(tmp, ckpt, "encoder", encoder)
        # lower-casing is the tokenizer's own (its normalizer), so sentence-transformers must not add one
        _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": length, "do_lower_case": False})
        _write_json(tmp / "modules.json", modules)
        (tmp / "1_Pooling").mkdir()
        _write_json(tmp / "1_Pooling" / "config.json", pooling_config)
        if normalize:
            (tmp / "2_Normalize").mkdir()
        artifacts.write_manifest(tmp, "hf-export", {"convert": {"to": "sentence-transformers",
                                                                "source": str(ckpt.folder)}},
                                 [ckpt.folder / WEIGHTS], architecture="BertModel", pooling=pooling,
                                 normalize=normalize, max_seq_len=length)
    console.print(f"exported {ckpt.folder} -> {out}: sentence-transformers (BertModel, {pooling} pooling"
                  f"{', normalised' if normalize else ''}, {length} tokens)")
    return out


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- bertcli -> ONNX

# The fp32 graph must agree with PyTorch to rounding; past this the export is broken, not rounded.
ONNX_FP32_TOLERANCE = 1e-3


def export_onnx(checkpoint: Path, out: Path) -> Path:
    """model.onnx (fp32), model_int8.onnx (int8 weights per channel), the tokenizer and model.json,
    each graph checked against the PyTorch model on real sentences at export time."""
    onnx.require_onnx()
    ckpt = load_checkpoint(checkpoint)
    out = artifacts.check_output_target(out, "onnx-export", inputs=[checkpoint])
    is_encoder = ckpt.task not in TASKS
    model = load_encoder(ckpt) if is_encoder else load_task_model(ckpt, None, "convert").model
    reference = onnx.graph_module(model, is_encoder)
    tokenizer = ckpt.tokenizer()
    inputs = onnx.parity_inputs(tokenizer, min(128, ckpt.config.max_position_embeddings))
    with artifacts.staged_folder(out) as tmp:
        onnx.build_graphs(reference, tmp, ckpt.config, int8=True)
        graphs = {name: onnx.OnnxModule(tmp / name) for name in (onnx.ONNX_FILE, onnx.INT8_FILE)}
        parity = {name: onnx.compare(reference, graph, inputs, reference.outputs).to_dict()
                  for name, graph in graphs.items()}
        worst = max(parity[onnx.ONNX_FILE]["max_abs_diff"].values())
        if worst > ONNX_FP32_TOLERANCE:
            raise UserError(f"{ckpt.folder}: the ONNX graph differs from PyTorch by {worst:.2g} (more than "
                            f"{ONNX_FP32_TOLERANCE:g}); nothing was written, serve this model with bertcli")
        shutil.copy2(ckpt.folder / MODEL_JSON, tmp / MODEL_JSON)
        tokenizer.copy_to(tmp / "tokenizer")
        artifacts.write_manifest(tmp, "onnx-export", {"convert": {"to": "onnx", "source": str(ckpt.folder)}},
                                 [ckpt.folder / WEIGHTS], task=ckpt.task,
                                 graph_inputs=graphs[onnx.ONNX_FILE].inputs,
                                 graph_outputs=list(reference.outputs), opset=onnx.OPSET,
                                 parity_texts=len(inputs[0]), parity=parity)
    fp32, int8 = parity[onnx.ONNX_FILE], parity[onnx.INT8_FILE]
    console.print(f"exported {ckpt.folder} -> {out}: {', '.join(reference.outputs)}; against PyTorch on "
                  f"{len(inputs[0])} sentences: fp32 max |diff| {max(fp32['max_abs_diff'].values()):.2g}"
                  f", int8 max |diff| {max(int8['max_abs_diff'].values()):.2g} "
                  f"(min cosine {int8['min_cosine']:.4f})")
    return out
