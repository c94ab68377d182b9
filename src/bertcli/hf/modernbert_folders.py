"""ModernBERT folders for `bertcli convert`: a checkpoint with the modern block to transformers, and back.

Export writes ModernBertForMaskedLM when the checkpoint has an MLM head (pretraining, or an imported
masked LM) and ModernBertModel for an encoder or an ELECTRA discriminator (transformers has no
ModernBERT replaced-token head). A fine-tuned classifier is refused: transformers' ModernBERT
classifier has another head (dense, GELU, LayerNorm) than bertcli's (pooler, linear).
Import reads either class; the pooler, which ModernBERT has not, is initialised, seeded.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from bertcli import artifacts
from bertcli.checkpoint import WEIGHTS
from bertcli.errors import UserError
from bertcli.hf import modernbert_weights
from bertcli.hf.bert_weights import ConversionError
from bertcli.hf.missing_weights import MISSING_WEIGHT_SEED, seeded_pooler
from bertcli.hf.imported import write_imported
from bertcli.hf.tokenizer import export_tokenizer
from bertcli.runtime import console

HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"


def export_modernbert(ckpt, out: Path, bert_blocking: list[str]) -> Path:
    """bert_blocking: the settings that kept the checkpoint from BERT's classes, for the message
    when it is not ModernBERT either."""
    blocking = modernbert_weights.unexportable(ckpt.config)
    if blocking:
        raise UserError(f"{ckpt.folder}: cannot export to transformers: as ModernBERT {'; '.join(blocking)}, "
                        f"as BERT {'; '.join(bert_blocking)}; retrain with model.block modern or bert as it is")
    task = _export_task(ckpt)
    state = ckpt.state_dict()
    try:
        hf_state = modernbert_weights.state_to_hf(state, ckpt.config, task)
    except KeyError as exc:
        raise UserError(f"{ckpt.folder / WEIGHTS}: tensor {exc.args[0]} missing for a ModernBERT {task}; the "
                        f"checkpoint is incomplete")
    tokenizer = ckpt.tokenizer()
    hf_config = modernbert_weights.config_to_hf(ckpt.config, task, tokenizer.settings["special_ids"])
    architecture = hf_config["architectures"][0]
    with artifacts.staged_folder(out) as tmp:
        save_file(hf_state, str(tmp / HF_SAFETENSORS), metadata={"format": "pt"})
        (tmp / HF_CONFIG).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
        export_tokenizer(tokenizer, tmp, ckpt.config.max_position_embeddings, segments=False)
        artifacts.write_manifest(tmp, "hf-export", {"convert": {"to": "hf", "source": str(ckpt.folder)}},
                                 [ckpt.folder / WEIGHTS], architecture=architecture)
    kept = {"bert", "mlm"} if task == "mlm" else {"bert"}
    left_out = sorted({name.split(".", 1)[0] for name in state} - kept)
    console.print(f"exported {ckpt.folder} -> {out}: {architecture}, {len(hf_state)} tensors; not exported: the "
                  f"pooler{''.join(f', {head}' for head in left_out)} (ModernBERT has no place for them)")
    return out


def _export_task(ckpt) -> str:
    if "mlm" in ckpt.heads:
        return "mlm"
    if ckpt.task in ("encoder",) or "discriminator" in ckpt.heads:
        return "encoder"
    raise UserError(f"{ckpt.folder}: a {ckpt.task!r} checkpoint with the modern block has no transformers class "
                    f"bertcli can fill (ModernBERT's task heads differ from bertcli's); export the pretrained "
                    f"checkpoint it was fine-tuned from, or serve it with bertcli predict")


def import_modernbert(hf_dir: Path, out: Path, hf_config: dict, read_weights) -> Path:
    """`read_weights(folder)` -> (tensors, path): convert.read_hf_weights, passed in to keep one reader."""
    try:
        config = modernbert_weights.config_from_hf(hf_config)
    except ConversionError as exc:
        raise UserError(f"{hf_dir / HF_CONFIG}: {exc}")
    hf_state, weights_path = read_weights(hf_dir)
    try:
        state, task = modernbert_weights.state_from_hf(hf_state, config)
    except ConversionError as exc:
        raise UserError(f"{weights_path}: {exc}")
    pooler = seeded_pooler(config)
    state.update(pooler)
    extra = {"source": {"format": "hf", "path": str(hf_dir.resolve()), "weights": weights_path.name,
                        "architecture": modernbert_weights.TASK_ARCHITECTURE[task]}, "missing": sorted(pooler)}
    heads = ["mlm"] if task == "mlm" else []
    if task == "mlm":
        extra["absent_heads"] = ["nsp"]
    write_imported(hf_dir, out, state, config, task, heads, extra)
    console.print(f"imported {hf_dir} -> {out}: ModernBERT {task}, {config.num_layers} layers, hidden "
                  f"{config.hidden_size}, {len(state)} tensors; the pooler, which ModernBERT has not, initialised "
                  f"at random (seed {MISSING_WEIGHT_SEED})")
    return out
