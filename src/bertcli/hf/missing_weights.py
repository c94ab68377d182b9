"""The one weight an imported transformers model may lack: bertcli's pooler (BertForMaskedLM, ELECTRA
and ModernBERT have none). It is initialised as BERT's TF code would, from a fixed seed, so that
importing the same folder twice gives the same checkpoint."""

from __future__ import annotations

import torch

from bertcli.model.config import BertConfig
from bertcli.model.encoder import Pooler, init_weights

MISSING_WEIGHT_SEED = 0


def seeded_pooler(config: BertConfig) -> dict[str, torch.Tensor]:
    """The pooler's tensors under their checkpoint names (bert.pooler.*), without touching the
    global random stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(MISSING_WEIGHT_SEED)
        pooler = Pooler(config)
        init_weights(pooler, config.initializer_range)
    return {f"bert.pooler.{name}": tensor for name, tensor in pooler.state_dict().items()}
