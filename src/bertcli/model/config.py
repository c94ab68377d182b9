"""The architecture of a BERT encoder, and the published size presets."""

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

    def __post_init__(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "BertConfig":
        """The preset's shape (`preset_shape`) with `overrides` laid over it; an override of None
        keeps the preset's value, so a ModelSpec's unset sizes can be passed as they are.
        KeyError for an unknown preset, ValueError for a width the heads do not divide."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return cls(**{**preset_shape(name), **given})

    @classmethod
    def from_dict(cls, data: dict) -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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
