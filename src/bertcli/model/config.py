"""The architecture of an encoder: its size (the published presets) and its block (BERT's, or the
modern block of ModernBERT, Warner et al. 2024, one setting at a time)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1  # hidden dropout (embeddings, attention output, feed-forward output)
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12  # BERT's TF code uses 1e-12
    initializer_range: float = 0.02  # truncated normal std, as in BERT's TF code
    pad_token_id: int = 0
    # The block. The defaults are BERT's, so a model.json written before these existed reads as BERT.
    norm: str = "post"  # post: LN(x + f(x)) (BERT); pre: x + f(LN(x)), plus a final LayerNorm
    position: str = "learned"  # learned absolute embeddings (BERT), or rotary on queries and keys
    rope_theta: float = 10000.0  # rotary base of the global-attention layers
    local_rope_theta: float = 10000.0  # rotary base of the sliding-window layers
    ffn: str = "gelu"  # gelu: W2 gelu(W1 x) (BERT); geglu: W2 (gelu(W1a x) * W1b x), Shazeer 2020
    bias: bool = True  # biases in the encoder's linear and LayerNorm layers
    local_window: int = 0  # sliding-window layers attend |i - j| <= local_window / 2; 0: every layer global
    global_every: int = 1  # layer i attends globally when i % global_every == 0 (with a local_window)

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if self.position == "rotary" and self.head_dim % 2:
            raise ValueError(f"position=rotary needs an even head size (hidden_size / num_heads), got "
                             f"{self.hidden_size} / {self.num_heads} = {self.head_dim}; choose sizes where it is")
        if self.local_window < 0 or self.local_window % 2:
            raise ValueError(f"model.local_window must be an even number >= 0, got {self.local_window}")
        if self.global_every < 1:
            raise ValueError(f"model.global_every must be >= 1, got {self.global_every}")
        if self.type_vocab_size < 0:
            raise ValueError(f"model.type_vocab_size must be >= 0, got {self.type_vocab_size}")

    def is_global(self, layer: int) -> bool:
        """Whether layer `layer` (0-based) attends over the whole sequence or a sliding window."""
        return not self.local_window or layer % self.global_every == 0

    def block_settings(self) -> dict:
        """The settings that make the block (not its size): what --init-from and export compare."""
        return {key: getattr(self, key) for key in BLOCK_KEYS}

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_preset(cls, name: str, block: str = "bert", **overrides) -> "BertConfig":
        """The preset's shape (`preset_shape`) and the block's settings (`BLOCKS`) with `overrides`
        laid over them; an override of None keeps the preset's or block's value, so a ModelSpec's
        unset keys can be passed as they are. A GeGLU feed-forward without an explicit
        intermediate_size gets `geglu_width`, so that it costs no more than BERT's.
        KeyError for an unknown preset or block, ValueError for a bad combination."""
        given = {key: value for key, value in overrides.items() if value is not None}
        settings = {**preset_shape(name), **BLOCKS[block], **given}
        if settings.get("ffn") == "geglu" and "intermediate_size" not in given:
            settings["intermediate_size"] = geglu_width(settings["hidden_size"])
        return cls(**settings)

    @classmethod
    def from_dict(cls, data: dict) -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


CHOICES = {"norm": ("post", "pre"), "position": ("learned", "rotary"), "ffn": ("gelu", "geglu")}
BLOCK_KEYS = ("norm", "position", "rope_theta", "local_rope_theta", "ffn", "bias", "local_window", "global_every",
              "type_vocab_size", "layer_norm_eps")

# Blocks: the settings each lays over the dataclass defaults (which are BERT's, so "bert" restates them). "modern" is
# ModernBERT's block: pre-LN with a final norm, rotary positions (base 160,000 in the global layers,
# 10,000 in the local ones), GeGLU, no biases, a 128-token sliding window in two layers of three, no
# segment embeddings and LayerNorm eps 1e-5. Dropout is not the block's: ModernBERT trains without it
# on 2 T tokens, a small budget may want it, so it stays model.dropout's (the modern recipe sets 0).
BLOCKS = {
    "bert": {f.name: f.default for f in dataclasses.fields(BertConfig) if f.name in BLOCK_KEYS},
    "modern": {"norm": "pre", "position": "rotary", "rope_theta": 160000.0, "local_rope_theta": 10000.0,
               "ffn": "geglu", "bias": False, "local_window": 128, "global_every": 3, "type_vocab_size": 0,
               "layer_norm_eps": 1e-5},
}


def geglu_width(hidden_size: int) -> int:
    """GeGLU's inner width for the FLOPs of BERT's 4H GELU feed-forward: its input projection is
    twice as wide, so 2/3 of 4H, rounded down to a multiple of 32 (128 -> 320, 768 -> 2048)."""
    return max(32, (8 * hidden_size // 3) // 32 * 32)


# Named presets: the 24 small BERTs of Turc et al. 2019 ("Well-Read Students Learn Better") use
# these names for four of them; BERT-base and BERT-large are Devlin et al. 2019, section 3.
NAMED_PRESETS = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}
SMALL_BERT_LAYERS = (2, 4, 6, 8, 10, 12)
SMALL_BERT_HIDDEN = (128, 256, 512, 768)
_GRID_NAME = re.compile(r"^L(\d+)-H(\d+)$")


def preset_names() -> list[str]:
    grid = [f"L{layers}-H{hidden}" for layers in SMALL_BERT_LAYERS for hidden in SMALL_BERT_HIDDEN]
    return list(NAMED_PRESETS) + grid + ["L24-H1024"]


def preset_shape(name: str) -> dict[str, int]:
    """hidden_size, num_layers, num_heads (= hidden/64) and intermediate_size (= 4 x hidden)."""
    if name in NAMED_PRESETS:
        layers, hidden = NAMED_PRESETS[name]
    else:
        match = _GRID_NAME.match(name)
        if not match or name not in preset_names():
            raise KeyError(name)
        layers, hidden = int(match.group(1)), int(match.group(2))
    return {
        "hidden_size": hidden,
        "num_layers": layers,
        "num_heads": hidden // 64,
        "intermediate_size": 4 * hidden,
    }
