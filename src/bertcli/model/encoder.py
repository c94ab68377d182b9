"""BERT's encoder as published (Devlin et al. 2019): embeddings, post-LN Transformer layers, pooler.

Reads top to bottom: embeddings, self-attention, one layer, the stack. Shapes in comments use
B = batch, T = sequence length, H = hidden size, N = heads, D = head size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.model.config import BertConfig


class Embeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm and dropout (section 3.2)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)
        x = self.word(input_ids) + self.position(positions)  # (B, T, H)
        if token_type_ids is None:
            x = x + self.token_type.weight[0]
        else:
            x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection, through PyTorch's SDPA kernels."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.attention_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, queries: torch.Tensor | None = None) -> torch.Tensor:
        """queries (B, Q, H): attend from these rows only (keys and values still come from all of x)."""
        B, T, H = x.shape
        N, D = self.num_heads, H // self.num_heads
        if queries is None:
            q, k, v = self.qkv(x).view(B, T, 3, N, D).unbind(dim=2)  # 3 x (B, T, N, D)
        else:
            w_q, w_kv = self.qkv.weight.split([H, 2 * H])
            b_q, b_kv = self.qkv.bias.split([H, 2 * H])
            q = F.linear(queries, w_q, b_q).view(B, -1, N, D)  # (B, Q, N, D)
            k, v = F.linear(x, w_kv, b_kv).view(B, T, 2, N, D).unbind(dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, N, T or Q, D)
        dropout = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, N, Q, D)
        return self.out(y.transpose(1, 2).reshape(B, -1, H))


class EncoderLayer(nn.Module):
    """Post-LN block: x = LN(x + Attn(x)); x = LN(x + FFN(x)), with GELU in the FFN (section 3)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """rows (B, Q): compute the output only at these positions, (B, Q, H) instead of (B, T, H)."""
        queries = None if rows is None else x.gather(1, rows[..., None].expand(-1, -1, x.shape[-1]))
        residual = x if rows is None else queries
        x = self.attention_norm(residual + self.dropout(self.attention(x, mask, queries)))  # (B, T or Q, H)
        h = self.ffn_out(F.gelu(self.ffn_in(x)))  # exact (erf) GELU, as BERT's TF code
        return self.ffn_norm(x + self.dropout(h))


class Pooler(nn.Module):
    """tanh(W h_[CLS] + b): the sentence-level feature for NSP and classification."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))  # (B, H)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.pooler = Pooler(config)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last hidden states (B, T, H) and the pooled [CLS] feature (B, H).

        rows (B, Q), with rows[:, 0] == 0 ([CLS]): the last layer computes only these positions and
        the hidden states are (B, Q, H). Pretraining reads the last layer only at [CLS] and the masked
        positions, so this skips most of that layer's work without changing any result.
        """
        x = self.stack(self.embeddings(input_ids, token_type_ids), attention_mask, rows)  # (B, T or Q, H)
        return x, self.pooler(x)

    def stack(self, x: torch.Tensor, attention_mask: torch.Tensor | None,
              rows: torch.Tensor | None = None) -> torch.Tensor:
        """The layers on embedded input x (B, T, H); rows as in forward. ELECTRA's generator runs its
        own layers on the discriminator's embeddings through this."""
        mask = attention_bias(attention_mask)
        for layer in self.layers[:-1]:
            x = layer(x, mask)
        return self.layers[-1](x, mask, rows)  # (B, T or Q, H)

    def layer_states(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                     attention_mask: torch.Tensor | None = None):
        """Yields the embedding output, then each layer's output (B, T, H): num_layers + 1 tensors.

        Feature-based use (Devlin et al. 2019, section 5.3) reads chosen layers from here, so that
        forward() needs no "return every layer" switch.
        """
        x = self.embeddings(input_ids, token_type_ids)
        yield x
        mask = attention_bias(attention_mask)
        for layer in self.layers:
            x = layer(x, mask)
            yield x


def attention_bias(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask -> (B, 1, 1, T) boolean "may attend" mask for SDPA.

    Callers pass None when nothing is padded (the batch assembler knows it on the host), so that
    SDPA can take its fastest kernel; checking here would cost a device-to-host sync every forward.
    """
    if attention_mask is None:
        return None
    return attention_mask.bool()[:, None, None, :]


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: truncated normal(0, 0.02) weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
