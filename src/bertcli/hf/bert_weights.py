"""Hugging Face BERT <-> bertcli: configuration fields and weight names, as pure dict and tensor work.

Hugging Face keeps query, key and value as three Linear layers; bertcli fuses them into one
`qkv` Linear(H, 3H) whose rows are [query; key; value], so importing concatenates on dim 0 and
exporting splits in three. Every other tensor is a rename. File reading, tokenizers and user-facing
messages live in `bertcli.stages.convert`; this module only raises `ValueError` with the tensor or
field at fault, so that the caller can add the file name.
"""

from __future__ import annotations

import torch

from bertcli.model.config import BertConfig
from bertcli.model.heads import BertForPretraining, ClassificationHead

# Hugging Face class -> bertcli task; the heads each task carries (see bertcli.checkpoint).
ARCHITECTURES = {
    "BertModel": "encoder",
    "BertForPreTraining": "pretraining",
    "BertForMaskedLM": "mlm",
    "BertForSequenceClassification": "cls",
}
TASK_HEADS = {"encoder": [], "pretraining": ["mlm", "nsp"], "mlm": ["mlm"], "cls": ["classifier"]}
TASK_ARCHITECTURE = {task: arch for arch, task in ARCHITECTURES.items()}

POOLER = ("bert.pooler.dense.weight", "bert.pooler.dense.bias")

# Tensors that Hugging Face files may hold but that carry no weights of their own: a position-id
# buffer (older transformers saved it), and the MLM decoder, tied to the word embeddings and to
# cls.predictions.bias (checked in state_from_hf rather than trusted).
_BUFFERS = ("embeddings.position_ids",)
_DECODER_WEIGHT = "cls.predictions.decoder.weight"
_DECODER_BIAS = "cls.predictions.decoder.bias"


class ConversionError(ValueError):
    """A configuration or tensor that bertcli cannot turn into (or out of) its own BERT."""


def config_from_hf(hf: dict) -> BertConfig:
    """BertConfig from a Hugging Face config.json; anything bertcli's encoder does not compute is refused."""
    if hf.get("model_type") != "bert":
        raise ConversionError(f"model_type is {hf.get('model_type')!r}, not 'bert'")
    # Our encoder computes exact (erf) GELU, absolute positions and no cross-attention; converting
    # any other variant would load without error and give different numbers.
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ConversionError(f"hidden_act is {hf['hidden_act']!r}; bertcli's encoder supports 'gelu' (erf) only")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"position_embedding_type is {hf['position_embedding_type']!r}; "
                              f"bertcli supports 'absolute' only")
    if hf.get("is_decoder") or hf.get("add_cross_attention"):
        raise ConversionError("this is a BERT decoder (is_decoder / add_cross_attention); bertcli has encoders only")
    try:
        return BertConfig(
            vocab_size=int(hf["vocab_size"]),
            hidden_size=int(hf["hidden_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=int(hf["num_attention_heads"]),
            intermediate_size=int(hf["intermediate_size"]),
            max_position_embeddings=int(hf.get("max_position_embeddings", 512)),
            type_vocab_size=int(hf.get("type_vocab_size", 2)),
            dropout=float(hf.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
            layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
            initializer_range=float(hf.get("initializer_range", 0.02)),
            pad_token_id=int(hf.get("pad_token_id") or 0),
        )
    except KeyError as exc:
        raise ConversionError(f"missing field {exc.args[0]!r}")
    except (TypeError, ValueError) as exc:
        raise ConversionError(str(exc))


def unexportable(config: BertConfig) -> list[str]:
    """The block settings that keep `config` from being transformers' BERT (or ELECTRA, the same block),
    one phrase each naming the setting and what BERT has."""
    bert = BertConfig()
    blocking = [f"model.{key}={getattr(config, key)} (BERT's is {getattr(bert, key)})"
                for key in ("norm", "position", "ffn", "bias", "local_window") if getattr(config, key) != getattr(bert, key)]
    if config.type_vocab_size < 1:
        blocking.append(f"model.type_vocab_size={config.type_vocab_size} (BERT has segment embeddings)")
    return blocking


def config_to_hf(config: BertConfig, task: str, labels: list[str]) -> dict:
    """A config.json that transformers reads as the same model, for the class that matches `task`."""
    hf = {
        "architectures": [TASK_ARCHITECTURE[task]],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
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
    if task == "cls":
        hf["id2label"] = {str(i): name for i, name in enumerate(labels)}
        hf["label2id"] = {name: i for i, name in enumerate(labels)}
    return hf


def _encoder_names(num_layers: int) -> list[tuple[str, str]]:
    """(bertcli name, Hugging Face name without the `bert.` prefix) for every encoder tensor but q/k/v."""
    pairs = [
        ("embeddings.word.weight", "embeddings.word_embeddings.weight"),
        ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
        ("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
        ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
        ("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
        ("pooler.dense.weight", "pooler.dense.weight"),
        ("pooler.dense.bias", "pooler.dense.bias"),
    ]
    for i in range(num_layers):
        ours, theirs = f"layers.{i}.", f"encoder.layer.{i}."
        for a, b in (("attention.out", "attention.output.dense"), ("attention_norm", "attention.output.LayerNorm"),
                     ("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense"), ("ffn_norm", "output.LayerNorm")):
            for p in ("weight", "bias"):
                pairs.append((f"{ours}{a}.{p}", f"{theirs}{b}.{p}"))
    return [("bert." + a, b) for a, b in pairs]


_HEAD_NAMES = [
    ("mlm.transform.weight", "cls.predictions.transform.dense.weight"),
    ("mlm.transform.bias", "cls.predictions.transform.dense.bias"),
    ("mlm.norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm.norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm.bias", "cls.predictions.bias"),
    ("nsp.linear.weight", "cls.seq_relationship.weight"),
    ("nsp.linear.bias", "cls.seq_relationship.bias"),
    ("classifier.linear.weight", "classifier.weight"),
    ("classifier.linear.bias", "classifier.bias"),
]


def _qkv_names(num_layers: int) -> list[tuple[str, list[str]]]:
    return [(f"bert.layers.{i}.attention.qkv.{p}",
             [f"encoder.layer.{i}.attention.self.{part}.{p}" for part in ("query", "key", "value")])
            for i in range(num_layers) for p in ("weight", "bias")]


def _canonical(name: str) -> str:
    """A Hugging Face key without its `bert.` prefix, with TF-era LayerNorm names made current.

    BertModel saved alone has no prefix, every model with a head has one; checkpoints converted from
    Google's TF release (bert-base-uncased's pytorch_model.bin) name LayerNorm parameters gamma/beta.
    """
    name = name.removeprefix("bert.")
    if ".LayerNorm." in name:
        name = name.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
    return name


def expected_shapes(config: BertConfig, num_labels: int) -> dict[str, tuple[int, ...]]:
    """Every tensor bertcli could hold for `config` (all heads), by bertcli name."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        shapes = {k: tuple(v.shape) for k, v in BertForPretraining(config).state_dict().items()}
        head = ClassificationHead(config, num_labels, 0.0)
    shapes.update({f"classifier.{k}": tuple(v.shape) for k, v in head.state_dict().items()})
    return shapes


def state_from_hf(hf_state: dict[str, torch.Tensor], config: BertConfig,
                  num_labels: int) -> dict[str, torch.Tensor]:
    """Hugging Face tensors -> bertcli tensors (fp32), for whatever parts the source holds.

    Raises ConversionError on a tensor of the wrong shape, an untied MLM decoder, or a tensor
    that has no place in a BERT of this config (another head, an extra layer).
    """
    source, original = {}, {}
    for name, tensor in hf_state.items():
        key = _canonical(name)
        if key in source:
            raise ConversionError(f"tensor {name!r} appears twice (as {original[key]!r} too)")
        source[key], original[key] = tensor, name
    for name in _BUFFERS:
        source.pop(name, None)

    shapes = expected_shapes(config, num_labels)

    def take(theirs: str, want: tuple[int, ...]) -> torch.Tensor:
        tensor = source.pop(theirs)
        if tuple(tensor.shape) != want:
            raise ConversionError(f"tensor {original[theirs]!r} has shape {list(tensor.shape)}, "
                                  f"expected {list(want)} from config.json")
        return tensor.float()

    state = {ours: take(theirs, shapes[ours])
             for ours, theirs in _encoder_names(config.num_layers) + _HEAD_NAMES if theirs in source}
    for ours, parts in _qkv_names(config.num_layers):
        present = [p for p in parts if p in source]
        if present and len(present) < 3:
            raise ConversionError(f"{', '.join(original[p] for p in present)} present without the rest of "
                                  f"query, key and value")
        if present:
            part_shape = (shapes[ours][0] // 3, *shapes[ours][1:])
            state[ours] = torch.cat([take(p, part_shape) for p in parts], dim=0)

    _check_decoder(source, state)
    if source:
        names = sorted(original[k] for k in source)
        raise ConversionError(f"{len(names)} tensor(s) have no place in a BERT of this config, e.g. "
                              f"{', '.join(names[:3])}")
    return state


def _check_decoder(source: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    """The MLM decoder must be the word embeddings and the MLM bias: bertcli ties them by construction."""
    weight = source.pop(_DECODER_WEIGHT, None)
    word = state.get("bert.embeddings.word.weight")
    if weight is not None and word is not None and not torch.equal(weight.float(), word):
        raise ConversionError(f"{_DECODER_WEIGHT} differs from the word embeddings; bertcli ties them, "
                              f"so an untied MLM decoder cannot be converted")
    bias = source.pop(_DECODER_BIAS, None)
    if bias is None:
        return
    if "mlm.bias" not in state:  # some transformers versions saved the bias under the decoder only
        state["mlm.bias"] = bias.float()
    elif not torch.equal(bias.float(), state["mlm.bias"]):
        raise ConversionError(f"{_DECODER_BIAS} differs from cls.predictions.bias; they are one tensor in BERT")


def required_names(config: BertConfig, task: str) -> list[str]:
    """bertcli names a checkpoint of `task` must hold (the pooler included)."""
    pairs = _encoder_names(config.num_layers) + _qkv_names(config.num_layers)
    heads = TASK_HEADS[task]
    return [ours for ours, _ in pairs] + [ours for ours, _ in _HEAD_NAMES if ours.split(".", 1)[0] in heads]


def hf_names(config: BertConfig) -> dict[str, str]:
    """bertcli name -> Hugging Face name (without `bert.`), for messages about missing tensors."""
    names = dict(_encoder_names(config.num_layers) + _HEAD_NAMES)
    for ours, parts in _qkv_names(config.num_layers):
        names[ours] = parts[0].replace(".query.", ".{query,key,value}.")
    return names


def state_to_hf(state: dict[str, torch.Tensor], config: BertConfig, task: str) -> dict[str, torch.Tensor]:
    """bertcli tensors -> the keys transformers' save_pretrained writes for the class matching `task`.

    BertModel has no prefix and BertForMaskedLM has no pooler, exactly as transformers builds them,
    so that loading reports no missing and no unexpected keys.
    """
    prefix = "" if task == "encoder" else "bert."
    heads = TASK_HEADS[task]
    out = {}
    for ours, theirs in _encoder_names(config.num_layers):
        if task == "mlm" and ours in POOLER:
            continue
        out[prefix + theirs] = state[ours]
    for ours, parts in _qkv_names(config.num_layers):
        for part, tensor in zip(parts, state[ours].chunk(3, dim=0)):
            out[prefix + part] = tensor
    for ours, theirs in _HEAD_NAMES:
        if ours.split(".", 1)[0] in heads:
            out[theirs] = state[ours]
    return {k: v.contiguous() for k, v in out.items()}
