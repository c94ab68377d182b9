"""ELECTRA's replaced-token detection (Clark et al. 2020): a small generator and the discriminator.

The generator is a narrow masked-LM encoder that fills the masked positions with tokens sampled from
its predictions; the discriminator (the model that is kept, `bert`) sees the corrupted text and
learns, at every position, whether the token is the original. Both train at once, with
loss = generator MLM + discriminator_weight x replaced-token loss (section 2; lambda = 50). No
gradient flows through the sampling, so the generator learns only from its MLM loss.

The generator has no embeddings of its own: it reads the discriminator's token (and position and
segment) embeddings through a linear projection to its width, and its MLM decoder is tied to the
same word embeddings (section 3.2, "we only share the embeddings ... of the generator and
discriminator"; transformers' `embeddings_project`). Shapes: B = batch, T = sequence, P = masked
slots, H = discriminator width, G = generator width, V = vocabulary.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.labels import IGNORE_INDEX
from bertcli.model.config import BertConfig
from bertcli.model.encoder import BertEncoder, init_weights
from bertcli.model.heads import MaskedLMHead, at_least_fp32


# A checkpoint's heads (model.json) when it was pretrained with ELECTRA: the generator's encoder and
# MLM head, and the replaced-token head.
ELECTRA_HEADS = ["generator", "generator_mlm", "discriminator"]


def generator_config(discriminator: BertConfig, fraction: float, heads: int = 0) -> BertConfig:
    """The generator's shape: `fraction` of the discriminator's width (and feed-forward size), the same
    depth and block, heads = width / 64 (at least 1) unless `heads` is given. ValueError naming the
    setting when the width is not a whole number of heads."""
    hidden = round(discriminator.hidden_size * fraction)
    if hidden < 1 or abs(hidden - discriminator.hidden_size * fraction) > 1e-6:
        raise ValueError(f"electra.generator_fraction {fraction} of width {discriminator.hidden_size} is not a "
                         f"whole number of units; choose a fraction f with {discriminator.hidden_size} x f whole, "
                         f"e.g. {', '.join(allowed_fractions(discriminator.hidden_size))}")
    heads = heads or max(1, hidden // 64)
    if hidden % heads:
        divisors = [str(n) for n in range(1, hidden + 1) if hidden % n == 0 and n <= 64]
        raise ValueError(f"electra.generator_heads {heads} does not divide the generator's width {hidden}; "
                         f"choose one of {', '.join(divisors)} (or 0 for width / 64)")
    intermediate = round(discriminator.intermediate_size * fraction)
    return dataclasses.replace(discriminator, hidden_size=hidden, num_heads=heads, intermediate_size=intermediate)


def allowed_fractions(hidden_size: int) -> list[str]:
    return [f"{f:g}" for f in (1 / 4, 1 / 3, 1 / 2, 1.0) if abs(hidden_size * f - round(hidden_size * f)) < 1e-6]


class Generator(BertEncoder):
    """The generator's encoder layers on the projected shared embeddings; no embeddings, no pooler."""

    def __init__(self, config: BertConfig, embedding_size: int):
        super().__init__(config)
        del self.embeddings, self.pooler  # the discriminator's embeddings are read; nothing pools
        self.project = nn.Linear(embedding_size, config.hidden_size)

    def forward(self, embedded: torch.Tensor, attention_mask: torch.Tensor | None,
                rows: torch.Tensor) -> torch.Tensor:
        """embedded (B, T, H) -> the last layer at `rows` only (B, P, G)."""
        return self.stack(self.project(embedded), attention_mask, rows)


class DiscriminatorHead(nn.Module):
    """Dense, GELU, then one logit per token: "is this token replaced?" (transformers'
    ElectraDiscriminatorPredictions, so the export is a rename)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.prediction(F.gelu(self.dense(hidden))).squeeze(-1)  # (B, T)


def original_tokens(input_ids: torch.Tensor, mlm_positions: torch.Tensor, mlm_labels: torch.Tensor) -> torch.Tensor:
    """The uncorrupted text: the corpus's masked input with each prediction slot's label put back.
    Padded slots (label IGNORE_INDEX, position 0) write back the token already there."""
    real = mlm_labels != IGNORE_INDEX
    values = torch.where(real, mlm_labels, input_ids.gather(1, mlm_positions))
    return input_ids.scatter(1, mlm_positions, values)  # (B, T)


def replace_tokens(original: torch.Tensor, mlm_positions: torch.Tensor, mlm_labels: torch.Tensor,
                   sampled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's input: `original` with the sampled token at every real prediction slot and
    nothing else changed, and the (B, T) 0/1 labels "differs from the original". A slot where the
    generator sampled the original token is labelled original, as in the paper (section 2)."""
    real = mlm_labels != IGNORE_INDEX
    values = torch.where(real, sampled, original.gather(1, mlm_positions))
    corrupted = original.scatter(1, mlm_positions, values)
    return corrupted, (corrupted != original)


def sample_tokens(logits: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from softmax(logits), by the Gumbel-max trick (argmax of logits + Gumbel
    noise is an exact sample; it needs no normalised probabilities). Training draws from torch's
    default generator, whose state checkpoints carry, so a resumed run samples the same tokens;
    evaluation passes its own seeded `rng`, so that it neither varies nor moves training's stream."""
    uniform = torch.rand(logits.shape, generator=rng, device=logits.device).clamp_(min=1e-9, max=1.0 - 1e-7)
    return (at_least_fp32(logits) - torch.log(-torch.log(uniform))).argmax(dim=-1)


class ElectraForPretraining(nn.Module):
    """`bert` is the discriminator (what fine-tuning, embed and predict read), `generator` and
    `generator_mlm` the generator, `discriminator` the replaced-token head."""

    def __init__(self, config: BertConfig, generator: BertConfig, discriminator_weight: float = 50.0):
        super().__init__()
        self.config, self.generator_config = config, generator
        self.discriminator_weight = discriminator_weight
        self.bert = BertEncoder(config)
        self.generator = Generator(generator, config.hidden_size)
        self.generator_mlm = MaskedLMHead(generator, out_size=config.hidden_size)
        self.discriminator = DiscriminatorHead(config)
        init_weights(self, config.initializer_range)

    def forward(self, input_ids, token_type_ids, attention_mask, mlm_positions, mlm_labels,
                next_sentence_label=None, rng: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Losses and what evaluation reads. next_sentence_label is accepted and ignored: ELECTRA has
        no NSP (it follows RoBERTa in dropping it). `rng`: see sample_tokens."""
        word = self.bert.embeddings.word.weight
        embedded = self.bert.embeddings(input_ids, token_type_ids)  # (B, T, H)
        generated = self.generator(embedded, attention_mask, mlm_positions)  # (B, P, G)
        mlm_logits = self.generator_mlm(generated.flatten(0, 1), word)  # (B * P, V)
        mlm_targets = mlm_labels.flatten()
        mlm_loss = F.cross_entropy(at_least_fp32(mlm_logits), mlm_targets, ignore_index=IGNORE_INDEX)

        with torch.no_grad():  # the sample is data for the discriminator, not a path for gradients
            sampled = sample_tokens(mlm_logits.detach(), rng).view_as(mlm_positions)
            original = original_tokens(input_ids, mlm_positions, mlm_labels)
            corrupted, replaced = replace_tokens(original, mlm_positions, mlm_labels, sampled)
        hidden, _ = self.bert(corrupted, token_type_ids, attention_mask)  # (B, T, H)
        disc_logits = at_least_fp32(self.discriminator(hidden))  # (B, T)
        real = torch.ones_like(disc_logits) if attention_mask is None else attention_mask.to(disc_logits.dtype)
        per_token = F.binary_cross_entropy_with_logits(disc_logits, replaced.to(disc_logits.dtype), reduction="none")
        tokens = real.sum().clamp(min=1.0)
        disc_loss = (per_token * real).sum() / tokens
        disc_correct = (((disc_logits > 0) == replaced).to(real.dtype) * real).sum() / tokens
        return {"loss": mlm_loss + self.discriminator_weight * disc_loss, "mlm_loss": mlm_loss,
                "disc_loss": disc_loss, "disc_accuracy": disc_correct,
                "replaced_fraction": (replaced.to(real.dtype) * real).sum() / tokens,
                "mlm_logits": mlm_logits, "mlm_targets": mlm_targets,
                "disc_logits": disc_logits, "replaced": replaced, "real": real}
