"""ELECTRA folders for `bertcli convert`: a bertcli ELECTRA run to transformers' two models, and back.

Export writes the discriminator as ElectraForPreTraining into OUT and the generator as
ElectraForMaskedLM into OUT/generator, each a complete transformers folder with the tokenizer.
Import reads such a folder: the discriminator alone gives an encoder checkpoint (what fine-tuning
reads); with OUT/generator beside it, a whole ELECTRA pretraining checkpoint that `pretrain
--init-from` continues.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file

from bertcli import artifacts
from bertcli.checkpoint import MODEL_JSON, WEIGHTS
from bertcli.errors import UserError
from bertcli.hf import electra_weights
from bertcli.hf.bert_weights import ConversionError
from bertcli.hf.missing_weights import MISSING_WEIGHT_SEED, seeded_pooler
from bertcli.hf.imported import write_imported
from bertcli.hf.tokenizer import export_tokenizer
from bertcli.model.config import BertConfig
from bertcli.model.electra import ELECTRA_HEADS
from bertcli.runtime import console

GENERATOR_DIR = "generator"
HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"


def is_electra(ckpt) -> bool:
    return "discriminator" in ckpt.heads


def export_electra(ckpt, out: Path) -> Path:
    """A checkpoint of BERT's block (convert.export_hf sends the others to ModernBERT's export)."""
    try:
        generator = BertConfig.from_dict(ckpt.extra["generator"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{ckpt.folder / MODEL_JSON}: no valid generator shape ({exc}); use another checkpoint")
    state = ckpt.state_dict()
    try:
        disc_state, gen_state = electra_weights.states_to_hf(state, ckpt.config, generator)
    except KeyError as exc:
        raise UserError(f"{ckpt.folder / WEIGHTS}: tensor {exc.args[0]} missing for an ELECTRA model; the "
                        f"checkpoint is incomplete")
    disc_config, gen_config = electra_weights.configs_to_hf(ckpt.config, generator)
    tokenizer = ckpt.tokenizer()
    with artifacts.staged_folder(out) as tmp:
        for folder, tensors, hf_config in ((tmp, disc_state, disc_config),
                                           (tmp / GENERATOR_DIR, gen_state, gen_config)):
            folder.mkdir(exist_ok=True)
            save_file(tensors, str(folder / HF_SAFETENSORS), metadata={"format": "pt"})
            (folder / HF_CONFIG).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")
            export_tokenizer(tokenizer, folder, ckpt.config.max_position_embeddings)
        artifacts.write_manifest(tmp, "hf-export", {"convert": {"to": "hf", "source": str(ckpt.folder)}},
                                 [ckpt.folder / WEIGHTS], architecture=electra_weights.DISCRIMINATOR_ARCHITECTURE)
    console.print(f"exported {ckpt.folder} -> {out}: {electra_weights.DISCRIMINATOR_ARCHITECTURE} "
                  f"({len(disc_state)} tensors) and {out / GENERATOR_DIR}: {electra_weights.GENERATOR_ARCHITECTURE} "
                  f"({len(gen_state)} tensors); the discriminator's pooler (untrained) is not exported")
    return out


def import_electra(hf_dir: Path, out: Path, hf_config: dict, read_weights) -> Path:
    """`read_weights(folder)` -> (tensors, path): convert.read_hf_weights, passed in to keep one reader."""
    disc_config = _config(hf_dir, hf_config)
    if hf_config.get("embedding_size", disc_config.hidden_size) != disc_config.hidden_size:
        raise UserError(f"{hf_dir / HF_CONFIG}: embedding_size {hf_config['embedding_size']} differs from "
                        f"hidden_size {disc_config.hidden_size}; bertcli's discriminator has no embedding projection")
    disc_state, weights_path = read_weights(hf_dir)
    gen_dir = hf_dir / GENERATOR_DIR
    gen_config = gen_state = None
    if (gen_dir / HF_CONFIG).is_file():
        gen_config = _config(gen_dir, json.loads((gen_dir / HF_CONFIG).read_text(encoding="utf-8")))
        gen_state, _ = read_weights(gen_dir)
    try:
        state = electra_weights.states_from_hf(disc_state, gen_state, disc_config, gen_config)
    except ConversionError as exc:
        raise UserError(f"{weights_path}: {exc}")
    pooler = seeded_pooler(disc_config)
    state.update(pooler)
    extra = {"source": {"format": "hf", "path": str(hf_dir.resolve()), "weights": weights_path.name,
                        "architecture": electra_weights.DISCRIMINATOR_ARCHITECTURE},
             "missing": sorted(pooler)}
    if gen_config is not None:
        task, heads = "pretraining", ELECTRA_HEADS
        extra.update(objective="electra", generator=gen_config.to_dict())
    else:
        task, heads = "encoder", []
        state = {k: v for k, v in state.items() if k.startswith("bert.")}
        console.print(f"note: no {GENERATOR_DIR}/ beside {hf_dir / HF_CONFIG}: importing the discriminator's "
                      f"encoder (what fine-tuning reads); its replaced-token head is left out")
    write_imported(hf_dir, out, state, disc_config, task, heads, extra)
    console.print(f"imported {hf_dir} -> {out}: ELECTRA {'discriminator and generator' if gen_config else 'encoder'}, "
                  f"{disc_config.num_layers} layers, hidden {disc_config.hidden_size}, {len(state)} tensors; the "
                  f"pooler, which ELECTRA has not, initialised at random (seed {MISSING_WEIGHT_SEED})")
    return out


def _config(folder: Path, hf_config: dict) -> BertConfig:
    try:
        return electra_weights.config_from_hf(hf_config)
    except ConversionError as exc:
        raise UserError(f"{folder / HF_CONFIG}: {exc}")
