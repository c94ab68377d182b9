"""Hugging Face ModernBERT <-> bertcli's modern block: configuration fields and weight names.

transformers' ModernBERT is the pre-LN, rotary, GeGLU encoder with a sliding window in some layers;
bertcli computes it with the block settings of BertConfig (norm=pre, position=rotary, ffn=geglu,
no segment embeddings), so every tensor is a rename: the fused q/k/v (`Wqkv`) and the GeGLU input
projection (`Wi`, value rows then gate rows) have the same layout on both sides. ModernBERT has no
pooler; bertcli's (untrained by MLM) is not exported, and an import initialises it, seeded.
Raises ConversionError naming the field or tensor at fault.
"""

from __future__ import annotations

import torch

from bertcli.hf.bert_weights import ConversionError
from bertcli.model.config import BertConfig

MODEL_TYPE = "modernbert"
ARCHITECTURES = {"ModernBertModel": "encoder", "ModernBertForMaskedLM": "mlm"}
TASK_ARCHITECTURE = {task: arch for arch, task in ARCHITECTURES.items()}
# A ModernBertModel's own file has no "model." prefix; inside ModernBertForMaskedLM it has.
PREFIX = {"encoder": "", "mlm": "model."}
_MLM_HEAD = [("mlm.transform", "head.dense"), ("mlm.norm", "head.norm")]
_DECODER_WEIGHT, _DECODER_BIAS = "decoder.weight", "decoder.bias"
POOLER = ("bert.pooler.dense.weight", "bert.pooler.dense.bias")


def is_modern(config: BertConfig) -> bool:
    """Whether the block is ModernBERT's kind rather than BERT's (what decides the export class)."""
    return config.norm == "pre" or config.position == "rotary" or config.ffn == "geglu"


def unexportable(config: BertConfig) -> list[str]:
    """The settings that keep `config` from being transformers' ModernBERT, one phrase each."""
    need = {"norm": "pre", "position": "rotary", "ffn": "geglu"}
    blocking = [f"model.{key}={getattr(config, key)} (ModernBERT is {value})"
                for key, value in need.items() if getattr(config, key) != value]
    if config.type_vocab_size:
        blocking.append(f"model.type_vocab_size={config.type_vocab_size} (ModernBERT has no segment embeddings)")
    return blocking


def config_to_hf(config: BertConfig, task: str, special_ids: dict[str, int]) -> dict:
    """A config.json that transformers reads as the same model; special_ids: the tokenizer's."""
    layer_types = ["full_attention" if config.is_global(i) else "sliding_attention" for i in range(config.num_layers)]
    return {
        "architectures": [TASK_ARCHITECTURE[task]],
        "model_type": MODEL_TYPE,
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "hidden_activation": "gelu",
        "classifier_activation": "gelu",
        "max_position_embeddings": config.max_position_embeddings,
        "initializer_range": config.initializer_range,
        "initializer_cutoff_factor": 2.0,
        "norm_eps": config.layer_norm_eps,
        "norm_bias": config.bias,
        "attention_bias": config.bias,
        "mlp_bias": config.bias,
        "classifier_bias": config.bias,
        "decoder_bias": True,
        "embedding_dropout": config.dropout,
        "mlp_dropout": config.dropout,
        "attention_dropout": config.attention_dropout,
        # With no window every layer is full_attention, so the window's size is never read.
        "local_attention": config.local_window or 128,
        "layer_types": layer_types,
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": config.rope_theta},
                            "sliding_attention": {"rope_type": "default", "rope_theta": config.local_rope_theta}},
        "pad_token_id": special_ids["[PAD]"],
        "cls_token_id": special_ids["[CLS]"],
        "bos_token_id": special_ids["[CLS]"],
        "sep_token_id": special_ids["[SEP]"],
        "eos_token_id": special_ids["[SEP]"],
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def config_from_hf(hf: dict) -> BertConfig:
    """BertConfig of a ModernBERT config.json; refuses what bertcli's block does not compute."""
    if hf.get("model_type") != MODEL_TYPE:
        raise ConversionError(f"model_type is {hf.get('model_type')!r}, not {MODEL_TYPE!r}")
    for key in ("hidden_activation", "classifier_activation"):
        if hf.get(key, "gelu") != "gelu":
            raise ConversionError(f"{key} is {hf[key]!r}; bertcli supports 'gelu' (erf) only")
    biases = {key: bool(hf.get(key, False)) for key in ("norm_bias", "attention_bias", "mlp_bias", "classifier_bias")}
    if len(set(biases.values())) > 1:
        raise ConversionError(f"biases differ between layers ({', '.join(f'{k}={v}' for k, v in biases.items())}); "
                              f"bertcli has one bias setting for all of them")
    if not hf.get("decoder_bias", True):
        raise ConversionError("decoder_bias is false; bertcli's MLM decoder always has a bias")
    if not hf.get("tie_word_embeddings", True):
        raise ConversionError("tie_word_embeddings is false; bertcli ties the MLM decoder to the word embeddings")
    try:
        layers = int(hf["num_hidden_layers"])
        window, every = _attention_pattern(hf, layers)
        thetas = _rope_thetas(hf)
        return BertConfig(
            vocab_size=int(hf["vocab_size"]), hidden_size=int(hf["hidden_size"]), num_layers=layers,
            num_heads=int(hf["num_attention_heads"]), intermediate_size=int(hf["intermediate_size"]),
            max_position_embeddings=int(hf.get("max_position_embeddings", 8192)), type_vocab_size=0,
            dropout=float(hf.get("mlp_dropout", 0.0)), attention_dropout=float(hf.get("attention_dropout", 0.0)),
            layer_norm_eps=float(hf.get("norm_eps", 1e-5)), initializer_range=float(hf.get("initializer_range", 0.02)),
            pad_token_id=int(hf.get("pad_token_id") or 0), norm="pre", position="rotary", ffn="geglu",
            bias=biases["norm_bias"], local_window=window, global_every=every,
            rope_theta=thetas[0], local_rope_theta=thetas[1])
    except KeyError as exc:
        raise ConversionError(f"missing field {exc.args[0]!r}")
    except (TypeError, ValueError) as exc:
        raise ConversionError(str(exc))


def _attention_pattern(hf: dict, layers: int) -> tuple[int, int]:
    """(local_window, global_every) of layer_types, which must be bertcli's pattern: full attention
    at every n-th layer from layer 0, sliding elsewhere."""
    types = hf.get("layer_types")
    if types is None:
        every = int(hf.get("global_attn_every_n_layers", 3))
        types = ["full_attention" if i % every == 0 else "sliding_attention" for i in range(layers)]
    if len(types) != layers:
        raise ConversionError(f"layer_types has {len(types)} entries for {layers} layers")
    if not set(types) <= {"full_attention", "sliding_attention"}:
        raise ConversionError(f"layer_types {types}: bertcli knows full_attention and sliding_attention only")
    full = [i for i, kind in enumerate(types) if kind == "full_attention"]
    if len(full) == layers:
        return 0, 1
    every = full[1] if len(full) > 1 else layers
    if not full or full[0] != 0 or full != list(range(0, layers, every)):
        raise ConversionError(f"layer_types {types} is not full attention every n-th layer from layer 0; "
                              f"bertcli cannot compute that pattern")
    return int(hf.get("local_attention", 128)) // 2 * 2, every  # transformers reads only its half


def _rope_thetas(hf: dict) -> tuple[float, float]:
    params = hf.get("rope_parameters") or {}
    for kind in ("full_attention", "sliding_attention"):
        rope_type = (params.get(kind) or {}).get("rope_type", "default")
        if rope_type != "default":
            raise ConversionError(f"rope_parameters.{kind}.rope_type is {rope_type!r}; bertcli supports 'default' only")
    full = (params.get("full_attention") or {}).get("rope_theta", hf.get("global_rope_theta", 160000.0))
    sliding = (params.get("sliding_attention") or {}).get("rope_theta", hf.get("local_rope_theta", 10000.0))
    return float(full), float(sliding)


def _encoder_names(config: BertConfig) -> list[tuple[str, str]]:
    """(bertcli name, ModernBERT name without prefix) for every encoder tensor but the pooler."""
    weights = ("weight", "bias") if config.bias else ("weight",)
    pairs = [("bert.embeddings.word.weight", "embeddings.tok_embeddings.weight")]
    pairs += [(f"bert.embeddings.norm.{w}", f"embeddings.norm.{w}") for w in weights]
    for i in range(config.num_layers):
        modules = [("attention.qkv", "attn.Wqkv"), ("attention.out", "attn.Wo"), ("ffn_norm", "mlp_norm"),
                   ("ffn_in", "mlp.Wi"), ("ffn_out", "mlp.Wo")]
        if i > 0:  # layer 0's attention norm is an identity on both sides
            modules.append(("attention_norm", "attn_norm"))
        pairs += [(f"bert.layers.{i}.{ours}.{w}", f"layers.{i}.{theirs}.{w}") for ours, theirs in modules for w in weights]
    pairs += [(f"bert.final_norm.{w}", f"final_norm.{w}") for w in weights]
    return pairs


def _head_names(config: BertConfig) -> list[tuple[str, str]]:
    weights = ("weight", "bias") if config.bias else ("weight",)
    return [(f"{ours}.{w}", f"{theirs}.{w}") for ours, theirs in _MLM_HEAD for w in weights] + [("mlm.bias", _DECODER_BIAS)]


def state_to_hf(state: dict[str, torch.Tensor], config: BertConfig, task: str) -> dict[str, torch.Tensor]:
    """bertcli tensors -> ModernBertModel ("encoder") or ModernBertForMaskedLM ("mlm") tensors; the
    decoder weight is written as the word embeddings (tied), each tensor its own copy for safetensors."""
    prefix = PREFIX[task]
    out = {prefix + theirs: state[ours] for ours, theirs in _encoder_names(config)}
    if task == "mlm":
        out.update({theirs: state[ours] for ours, theirs in _head_names(config)})
        out[_DECODER_WEIGHT] = state["bert.embeddings.word.weight"]
    return {k: v.clone().contiguous() for k, v in out.items()}


def task_of(hf_state: dict[str, torch.Tensor]) -> str:
    """What the weights hold: a masked-LM head, or an encoder alone."""
    return "mlm" if _DECODER_BIAS in hf_state or "head.dense.weight" in hf_state else "encoder"


def state_from_hf(hf_state: dict[str, torch.Tensor], config: BertConfig) -> tuple[dict[str, torch.Tensor], str]:
    """transformers tensors -> bertcli tensors (fp32) without the pooler, and the task they make.
    ConversionError on a missing, misshapen or left-over tensor, or an untied decoder."""
    from bertcli.model.heads import BertForPretraining

    source, task = dict(hf_state), task_of(hf_state)
    if task == "encoder" and any(k.startswith("model.") for k in source):
        source = {k.removeprefix("model."): v for k, v in source.items()}
    with torch.device("meta"):  # shapes only
        shapes = {k: tuple(v.shape) for k, v in BertForPretraining(config).state_dict().items()}
    pairs = [(ours, PREFIX[task] + theirs) for ours, theirs in _encoder_names(config)]
    if task == "mlm":
        pairs += _head_names(config)
    state = {}
    for ours, theirs in pairs:
        if theirs not in source:
            raise ConversionError(f"tensor {theirs!r} is missing")
        tensor = source.pop(theirs)
        if tuple(tensor.shape) != shapes[ours]:
            raise ConversionError(f"tensor {theirs!r} has shape {list(tensor.shape)}, expected {list(shapes[ours])} "
                                  f"from config.json")
        state[ours] = tensor.float()
    decoder = source.pop(_DECODER_WEIGHT, None)
    if decoder is not None and not torch.equal(decoder.float(), state["bert.embeddings.word.weight"]):
        raise ConversionError(f"{_DECODER_WEIGHT} differs from the word embeddings; bertcli ties them")
    if source:
        raise ConversionError(f"{len(source)} tensor(s) have no place in a ModernBERT {task} of this config, "
                              f"e.g. {', '.join(sorted(source)[:3])}")
    return state, task
