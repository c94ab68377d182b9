"""Output heads and the models that put an encoder and heads together.

Pretraining heads (MLM, NSP) are never transferred to a downstream task: a fine-tuned model gets
a fresh head of its own on the pretrained encoder (Devlin et al. 2019, section 3.2 and figure 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.model.config import BertConfig
from bertcli.model.encoder import BertEncoder, init_weights

IGNORE_INDEX = -100  # label value of padded prediction slots, as in PyTorch's cross_entropy


class MaskedLMHead(nn.Module):
    """Transform (dense, GELU, LayerNorm), then a decoder tied to the input word embeddings, + bias.

    The decoder weight is passed in rather than held, so the tied tensor is stored only once.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        h = self.norm(F.gelu(self.transform(h)))  # (..., H)
        return F.linear(h, word_embeddings, self.bias)  # (..., V)


class NextSentenceHead(nn.Module):
    """Binary classifier on the pooled [CLS]: 0 = B follows A, 1 = B is random (as Hugging Face)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.linear = nn.Linear(config.hidden_size, 2)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)  # (B, 2)


class ClassificationHead(nn.Module):
    """Dropout + linear on the pooled [CLS] (section 4.1); num_labels = 1 is regression."""

    def __init__(self, config: BertConfig, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(config.hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(pooled))  # (B, num_labels)


class BertForPretraining(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertEncoder(config)
        self.mlm = MaskedLMHead(config)
        self.nsp = NextSentenceHead(config)
        init_weights(self, config.initializer_range)

    def forward(self, input_ids, token_type_ids, attention_mask, mlm_positions, mlm_labels,
                next_sentence_label=None) -> dict[str, torch.Tensor]:
        """Losses and logits. mlm_positions/mlm_labels are (B, P), padded with label IGNORE_INDEX.
        Without next_sentence_label (an MLM-only corpus) the NSP head is not run and the loss is MLM's.

        The vocabulary projection runs only on the masked positions: the (B, T, V) logits tensor
        of a full-sequence head is never built.
        """
        hidden, pooled = self.bert(input_ids, token_type_ids, attention_mask)  # (B, T, H), (B, H)
        B, T, H = hidden.shape
        valid = mlm_labels != IGNORE_INDEX  # (B, P)
        flat = (mlm_positions + T * torch.arange(B, device=hidden.device)[:, None])[valid]  # (M,)
        mlm_logits = self.mlm(hidden.reshape(B * T, H)[flat], self.bert.embeddings.word.weight)  # (M, V)
        mlm_targets = mlm_labels[valid]  # (M,)
        mlm_loss = F.cross_entropy(mlm_logits.float(), mlm_targets)
        out = {"loss": mlm_loss, "mlm_loss": mlm_loss, "mlm_logits": mlm_logits, "mlm_targets": mlm_targets}
        if next_sentence_label is not None:
            nsp_logits = self.nsp(pooled)  # (B, 2)
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label)
            out.update(loss=mlm_loss + nsp_loss, nsp_loss=nsp_loss, nsp_logits=nsp_logits)
        return out

    def mlm_logits_all(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        """Vocabulary logits at every position (B, T, V): for inspection and parity checks only."""
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        return self.mlm(hidden, self.bert.embeddings.word.weight)


class BertForSequenceClassification(nn.Module):
    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float = 0.1):
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.bert = BertEncoder(config)
        self.classifier = ClassificationHead(config, num_labels, classifier_dropout)
        init_weights(self, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        _, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        return self.classifier(pooled)  # (B, num_labels)
