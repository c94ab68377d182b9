"""Hugging Face ELECTRA <-> bertcli's ELECTRA: configuration fields and weight names, as dict and tensor work.

transformers keeps ELECTRA as two models: the discriminator (ElectraForPreTraining: embeddings,
BERT's encoder layers, `discriminator_predictions`) and the generator (ElectraForMaskedLM: the same
embeddings, `embeddings_project` to its width, its own layers, `generator_predictions` and
`generator_lm_head` tied to the word embeddings). An ELECTRA encoder layer is BERT's layer under
BERT's names, so the layer names come from bert_weights; neither transformers model has a pooler,
so the discriminator's (untrained: nothing in ELECTRA reads it) is not exported. Raises
ConversionError naming the field or tensor at fault.
"""

from __future__ import annotations

import torch

from bertcli.hf.bert_weights import ConversionError, _encoder_names, _qkv_names
from bertcli.model.config import BertConfig
from bertcli.model.electra import ElectraForPretraining

DISCRIMINATOR_ARCHITECTURE = "ElectraForPreTraining"
GENERATOR_ARCHITECTURE = "ElectraForMaskedLM"

_DISCRIMINATOR_HEAD = [
    ("discriminator.dense.weight", "discriminator_predictions.dense.weight"),
    ("discriminator.dense.bias", "discriminator_predictions.dense.bias"),
    ("discriminator.prediction.weight", "discriminator_predictions.dense_prediction.weight"),
    ("discriminator.prediction.bias", "discriminator_predictions.dense_prediction.bias"),
]
_GENERATOR_HEAD = [
    ("generator.project.weight", "electra.embeddings_project.weight"),
    ("generator.project.bias", "electra.embeddings_project.bias"),
    ("generator_mlm.transform.weight", "generator_predictions.dense.weight"),
    ("generator_mlm.transform.bias", "generator_predictions.dense.bias"),
    ("generator_mlm.norm.weight", "generator_predictions.LayerNorm.weight"),
    ("generator_mlm.norm.bias", "generator_predictions.LayerNorm.bias"),
    ("generator_mlm.bias", "generator_lm_head.bias"),
]
_TIED_DECODER = "generator_lm_head.weight"


def _config(config: BertConfig, architecture: str, embedding_size: int) -> dict:
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": config.vocab_size,
        "embedding_size": embedding_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_eps,
        "pad_token_id": config.pad_token_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def configs_to_hf(discriminator: BertConfig, generator: BertConfig) -> tuple[dict, dict]:
    """config.json of the discriminator (ElectraForPreTraining) and of the generator (ElectraForMaskedLM,
    whose embeddings keep the discriminator's width: embedding_size)."""
    return (_config(discriminator, DISCRIMINATOR_ARCHITECTURE, discriminator.hidden_size),
            _config(generator, GENERATOR_ARCHITECTURE, discriminator.hidden_size))


def _layer_pairs(num_layers: int, ours: str) -> list[tuple[str, str]]:
    """(bertcli name under `ours`, transformers name) for the encoder layers, q/k/v excluded."""
    return [(a.replace("bert.", ours, 1), "electra." + b) for a, b in _encoder_names(num_layers)
            if a.startswith("bert.layers.")]


def _embedding_pairs() -> list[tuple[str, str]]:
    return [(a, "electra." + b) for a, b in _encoder_names(0) if a.startswith("bert.embeddings.")]


def _qkv(num_layers: int, ours: str) -> list[tuple[str, list[str]]]:
    return [(a.replace("bert.", ours, 1), ["electra." + p for p in parts]) for a, parts in _qkv_names(num_layers)]


def states_to_hf(state: dict[str, torch.Tensor], discriminator: BertConfig,
                 generator: BertConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """bertcli ELECTRA tensors -> the discriminator's and the generator's transformers tensors. The
    embeddings, shared in bertcli, are written into both; the generator's decoder is the word embeddings."""
    embeddings = {theirs: state[ours] for ours, theirs in _embedding_pairs()}
    disc = dict(embeddings)
    disc.update({theirs: state[ours] for ours, theirs in _layer_pairs(discriminator.num_layers, "bert.")})
    disc.update({theirs: state[ours] for ours, theirs in _DISCRIMINATOR_HEAD})
    gen = dict(embeddings)
    gen.update({theirs: state[ours] for ours, theirs in _layer_pairs(generator.num_layers, "generator.")})
    gen.update({theirs: state[ours] for ours, theirs in _GENERATOR_HEAD})
    gen[_TIED_DECODER] = state["bert.embeddings.word.weight"]
    for target, prefix, layers in ((disc, "bert.", discriminator.num_layers), (gen, "generator.", generator.num_layers)):
        for ours, parts in _qkv(layers, prefix):
            for part, tensor in zip(parts, state[ours].chunk(3, dim=0)):
                target[part] = tensor
    # Each file gets its own copy: safetensors refuses tensors that share memory.
    return ({k: v.clone().contiguous() for k, v in disc.items()},
            {k: v.clone().contiguous() for k, v in gen.items()})


def config_from_hf(hf: dict) -> BertConfig:
    """BertConfig of an ELECTRA config.json (discriminator or generator); refuses what bertcli cannot compute."""
    if hf.get("model_type") != "electra":
        raise ConversionError(f"model_type is {hf.get('model_type')!r}, not 'electra'")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ConversionError(f"hidden_act is {hf['hidden_act']!r}; bertcli supports 'gelu' (erf) only")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"position_embedding_type is {hf['position_embedding_type']!r}; bertcli supports "
                              f"'absolute' only")
    try:
        return BertConfig(
            vocab_size=int(hf["vocab_size"]), hidden_size=int(hf["hidden_size"]),
            num_layers=int(hf["num_hidden_layers"]), num_heads=int(hf["num_attention_heads"]),
            intermediate_size=int(hf["intermediate_size"]),
            max_position_embeddings=int(hf.get("max_position_embeddings", 512)),
            type_vocab_size=int(hf.get("type_vocab_size", 2)), dropout=float(hf.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
            layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
            initializer_range=float(hf.get("initializer_range", 0.02)), pad_token_id=int(hf.get("pad_token_id") or 0))
    except KeyError as exc:
        raise ConversionError(f"missing field {exc.args[0]!r}")
    except (TypeError, ValueError) as exc:
        raise ConversionError(str(exc))


def states_from_hf(disc: dict[str, torch.Tensor], gen: dict[str, torch.Tensor] | None,
                   discriminator: BertConfig, generator: BertConfig | None) -> dict[str, torch.Tensor]:
    """transformers tensors -> bertcli tensors (fp32): the discriminator alone, or with the generator,
    whose embeddings must equal the discriminator's (bertcli shares them). No pooler: the caller
    fills it. ConversionError on a missing, misshapen or left-over tensor."""
    disc, state = dict(disc), {}
    with torch.device("meta"):  # shapes only
        shapes = {k: tuple(v.shape) for k, v in
                  ElectraForPretraining(discriminator, generator or discriminator).state_dict().items()}

    def take(source: dict, theirs: str, ours: str) -> torch.Tensor:
        if theirs not in source:
            raise ConversionError(f"tensor {theirs!r} is missing")
        tensor = source.pop(theirs)
        want = shapes[ours] if ours not in qkv_names else (shapes[ours][0] // 3, *shapes[ours][1:])
        if tuple(tensor.shape) != want:
            raise ConversionError(f"tensor {theirs!r} has shape {list(tensor.shape)}, expected {list(want)} "
                                  f"from config.json")
        return tensor.float()

    qkv_names = {ours for prefix, layers in (("bert.", discriminator.num_layers),
                                              ("generator.", generator.num_layers if generator else 0))
                 for ours, _ in _qkv(layers, prefix)}

    pairs = _embedding_pairs() + _layer_pairs(discriminator.num_layers, "bert.") + _DISCRIMINATOR_HEAD
    for ours, theirs in pairs:
        state[ours] = take(disc, theirs, ours)
    for ours, parts in _qkv(discriminator.num_layers, "bert."):
        state[ours] = torch.cat([take(disc, p, ours) for p in parts], dim=0)
    disc.pop("electra.embeddings.position_ids", None)
    if disc:
        raise ConversionError(f"{len(disc)} tensor(s) have no place in an ELECTRA discriminator of this config, "
                              f"e.g. {', '.join(sorted(disc)[:3])}")
    if gen is None:
        return state
    gen = dict(gen)
    for ours, theirs in _embedding_pairs():
        if not torch.equal(take(gen, theirs, ours), state[ours]):
            raise ConversionError(f"the generator's {theirs} differs from the discriminator's; bertcli's ELECTRA "
                                  f"shares the embeddings, so untied ones cannot be converted")
    for ours, theirs in _layer_pairs(generator.num_layers, "generator.") + _GENERATOR_HEAD:
        state[ours] = take(gen, theirs, ours)
    for ours, parts in _qkv(generator.num_layers, "generator."):
        state[ours] = torch.cat([take(gen, p, ours) for p in parts], dim=0)
    decoder = gen.pop(_TIED_DECODER, None)
    if decoder is not None and not torch.equal(decoder.float(), state["bert.embeddings.word.weight"]):
        raise ConversionError(f"{_TIED_DECODER} differs from the word embeddings; bertcli ties them")
    gen.pop("electra.embeddings.position_ids", None)
    if gen:
        raise ConversionError(f"{len(gen)} tensor(s) have no place in an ELECTRA generator of this config, "
                              f"e.g. {', '.join(sorted(gen)[:3])}")
    return state

