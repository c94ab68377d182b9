"""Output heads and the models that put an encoder and heads together.

Pretraining heads (MLM, NSP) are never transferred to a downstream task: a fine-tuned model gets
a fresh head of its own on the pretrained encoder (Devlin et al. 2019, section 3.2 and figure 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.labels import IGNORE_INDEX
from bertcli.model.config import BertConfig
from bertcli.model.encoder import BertEncoder, init_weights



def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 up to fp32 (a softmax over the vocabulary, or a sum of logged losses, needs the
    range and digits); fp64 stays fp64, so that a parity run in double precision stays double."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class MaskedLMHead(nn.Module):
    """Transform (dense, GELU, LayerNorm), then a decoder tied to the input word embeddings, + bias.
    The decoder's bias stays in a block without biases (as ModernBERT's): it is the unigram prior.

    The decoder weight is passed in rather than held, so the tied tensor is stored only once.
    `out_size`: the width of the tied embeddings when it differs from the encoder's (ELECTRA's
    narrow generator decodes into the discriminator's embeddings).
    """

    def __init__(self, config: BertConfig, out_size: int | None = None):
        super().__init__()
        out_size = out_size or config.hidden_size
        self.transform = nn.Linear(config.hidden_size, out_size, bias=config.bias)
        self.norm = nn.LayerNorm(out_size, eps=config.layer_norm_eps, bias=config.bias)
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


def init_task_head(linear: nn.Linear, std: float) -> None:
    """A task's new output layer: normal(0, std) weights and zero bias, as transformers initialises
    it (BERT's truncated normal at 2 std has a 0.88x smaller spread), so that a fine-tune here and one
    with transformers from the same checkpoint start from the same distribution of heads (one-epoch
    CoNLL-2003 from all-MiniLM-L6-v2: the median gap to transformers went from 3.2 to 1.2 F1,
    bench/RESULTS.md, issue 8). The encoder's own weights keep BERT's init."""
    nn.init.normal_(linear.weight, std=std)
    nn.init.zeros_(linear.bias)


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

        The vocabulary projection runs only on the P prediction slots: the (B, T, V) logits tensor
        of a full-sequence head is never built. mlm_logits (B * P, V) and mlm_targets (B * P,) keep
        the padded slots (target IGNORE_INDEX): selecting the real ones would cost a host sync.
        """
        # The last layer runs only at [CLS] (for NSP) and the masked positions: nothing else is read.
        rows = F.pad(mlm_positions, (1, 0))  # (B, 1 + P), row 0 = [CLS]
        hidden, pooled = self.bert(input_ids, token_type_ids, attention_mask, rows)  # (B, 1 + P, H), (B, H)
        mlm_logits = self.mlm(hidden[:, 1:].flatten(0, 1), self.bert.embeddings.word.weight)  # (B * P, V)
        mlm_targets = mlm_labels.flatten()  # (B * P,)
        mlm_loss = F.cross_entropy(at_least_fp32(mlm_logits), mlm_targets, ignore_index=IGNORE_INDEX)
        out = {"loss": mlm_loss, "mlm_loss": mlm_loss, "mlm_logits": mlm_logits, "mlm_targets": mlm_targets}
        if next_sentence_label is not None:
            nsp_logits = self.nsp(pooled)  # (B, 2)
            nsp_loss = F.cross_entropy(at_least_fp32(nsp_logits), next_sentence_label)
            out.update(loss=mlm_loss + nsp_loss, nsp_loss=nsp_loss, nsp_logits=nsp_logits)
        return out

    def mlm_logits_all(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        """Vocabulary logits at every position (B, T, V): for inspection and parity checks only."""
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        return self.mlm(hidden, self.bert.embeddings.word.weight)


POOLINGS = ("cls", "mean")


class BertForSequenceClassification(nn.Module):
    """pooling "cls": the pooled [CLS] feature (BERT, section 4.1; what transformers builds).
    "mean": the mean of the last hidden states over the real tokens (sentence-transformers' pooling).
    A model pretrained without NSP never trained its [CLS] output or pooler, while every token's
    output was trained by MLM, so its classifier is better off reading the tokens' mean."""

    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float = 0.1, pooling: str = "cls"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        self.config = config
        self.num_labels = num_labels
        self.pooling = pooling
        self.bert = BertEncoder(config)
        self.classifier = ClassificationHead(config, num_labels, classifier_dropout)
        init_weights(self, config.initializer_range)
        init_task_head(self.classifier.linear, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        hidden, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        if self.pooling == "mean":
            pooled = masked_mean(hidden, attention_mask)
        return self.classifier(pooled)  # (B, num_labels)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H) -> (B, H): the mean over the positions the mask marks real (all when None)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class BertForTokenClassification(nn.Module):
    """A label per token: dropout + linear on every last hidden state (section 4.3, CoNLL-2003 NER)."""

    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float = 0.1):
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.bert = BertEncoder(config)
        self.classifier = ClassificationHead(config, num_labels, classifier_dropout)
        init_weights(self, config.initializer_range)
        init_task_head(self.classifier.linear, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)  # (B, T, H)
        return self.classifier(hidden)  # (B, T, num_labels)


class SpanHead(nn.Module):
    """Start and end logits per token: one linear layer to 2 (section 4.2, SQuAD v1.1)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.linear = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden)  # (B, T, 2): [..., 0] start, [..., 1] end


class BertForQuestionAnswering(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertEncoder(config)
        self.span = SpanHead(config)
        init_weights(self, config.initializer_range)
        init_task_head(self.span.linear, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        hidden, _ = self.bert(input_ids, token_type_ids, attention_mask)
        return self.span(hidden)  # (B, T, 2)


# ----------------------------------------------------------------------------- feature-based use

# Which encoder outputs make a feature (section 5.3, table 7). Index 0 is the embedding output,
# index i the output of layer i, so -1 is the last layer and -2 the second-to-last.
LAYER_CHOICES = ("last", "second_to_last", "sum_last_four", "concat_last_four", "embeddings")


def feature_size(hidden_size: int, layers: str) -> int:
    return 4 * hidden_size if layers == "concat_last_four" else hidden_size


def combine_layers(states: list[torch.Tensor], layers: str) -> torch.Tensor:
    """(B, T, H) or (B, T, 4H) from the embedding output and every layer's output."""
    if layers == "last":
        return states[-1]
    if layers == "second_to_last":
        return states[-2]
    if layers == "embeddings":
        return states[0]
    if layers == "sum_last_four":
        return torch.stack(states[-4:]).sum(dim=0)
    if layers == "concat_last_four":
        return torch.cat(states[-4:], dim=-1)
    raise ValueError(f"unknown layer choice {layers!r}; choose one of {', '.join(LAYER_CHOICES)}")


class BiLSTMTagger(nn.Module):
    """Two-layer bidirectional LSTM then a linear layer, the paper's feature-based tagger (section 5.3)."""

    def __init__(self, input_size: int, num_labels: int, hidden_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=2, batch_first=True, bidirectional=True,
                            dropout=dropout)
        self.linear = nn.Linear(2 * hidden_size, num_labels)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.dropout(features), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=features.shape[1])
        return self.linear(self.dropout(out))  # (B, T, num_labels)


class LinearProbe(nn.Module):
    """Dropout + linear on features: per token (tagging) or on [CLS] (sentence tasks)."""

    def __init__(self, input_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(input_size, num_labels)

    def forward(self, features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.dropout(features))


class FeatureModel(nn.Module):
    """A frozen encoder whose chosen layers feed a small task model.

    Training runs the task model on cached features (`self.head(features, mask)`); prediction runs
    the whole thing (`forward`), so a feature-based checkpoint predicts like a fine-tuned one.
    `per_token` picks every token's features (tagging) or the [CLS] token's (sentence tasks).
    """

    def __init__(self, config: BertConfig, num_labels: int, layers: str, head: str, per_token: bool,
                 lstm_size: int = 256, dropout: float = 0.1):
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.layers, self.per_token = layers, per_token
        self.bert = BertEncoder(config)
        size = feature_size(config.hidden_size, layers)
        if head == "bilstm":
            self.head = BiLSTMTagger(size, num_labels, lstm_size, dropout)
        else:
            self.head = LinearProbe(size, num_labels, dropout)
        self.bert.requires_grad_(False)

    def features(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        states = list(self.bert.layer_states(input_ids, token_type_ids, attention_mask))
        features = combine_layers(states, self.layers)  # (B, T, F)
        return features if self.per_token else features[:, 0]  # (B, T, F) or (B, F)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        return self.head(self.features(input_ids, token_type_ids, attention_mask), attention_mask)
