"""BERT's encoder as published (Devlin et al. 2019): embeddings, post-LN Transformer layers, pooler;
and, setting by setting (BertConfig), the modern block of ModernBERT (Warner et al. 2024).

Reads top to bottom: embeddings, self-attention, one layer, the stack. Shapes in comments use
B = batch, T = sequence length, H = hidden size, N = heads, D = head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bertcli.model.config import BertConfig


class Embeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm and dropout (section 3.2).
    A rotary model has no position table (positions enter in attention); type_vocab_size 0, no
    segment table (token_type_ids are then ignored)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        learned = config.position == "learned"
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size) if learned else None
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        x = self.word(input_ids)  # (B, T, H)
        if self.position is not None:
            x = x + self.position(torch.arange(input_ids.shape[1], device=input_ids.device))
        if self.token_type is not None:
            x = x + (self.token_type.weight[0] if token_type_ids is None else self.token_type(token_type_ids))
        return self.dropout(self.norm(x))


class Rotary(nn.Module):
    """Rotary position embeddings (Su et al. 2021) in the rotate-half layout (GPT-NeoX, ModernBERT):
    the pair (x[i], x[i + D/2]) turns by position x theta^(-2i/D). The tables are computed in fp32 the
    way transformers computes them, so that an exported model matches it, and are not saved: they
    follow from the config. `sin` holds the rotation's sign (-sin on the first half), so that the
    turn is x cos + swap_halves(x) sin, three kernels each way (see _Rotate)."""

    def __init__(self, head_dim: int, max_positions: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        angles = torch.arange(max_positions, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (P, D/2)
        self.register_buffer("cos", torch.cat([angles.cos(), angles.cos()], dim=-1), persistent=False)  # (P, D)
        self.register_buffer("sin", torch.cat([-angles.sin(), angles.sin()], dim=-1), persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, ..., D), positions along dim 1: 0..T-1, or `positions` (B, T). Turned in fp32 and
        returned in x's dtype."""
        if positions is None:
            cos, sin = self.cos[: x.shape[1]], self.sin[: x.shape[1]]  # (T, D)
        else:
            cos, sin = self.cos[positions], self.sin[positions]  # (B, T, D)
        between = (1,) * (x.dim() - 3)  # broadcast over the head (and q/k) axes
        shape = (*cos.shape[:-1], *between, cos.shape[-1])
        return _Rotate.apply(x, cos.float().view(shape), sin.float().view(shape))


def _swap_halves(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([second, first], dim=-1)


class _Rotate(torch.autograd.Function):
    """y = x cos + swap(x) sin. A rotation's gradient is the opposite rotation, g cos + swap(g sin)
    with the signed sin, so backward needs only the tables: autograd's own graph of the same ops
    would keep the unrotated queries and keys of every layer alive until backward. (Time is the same
    either way: rotary is memory-bound, about 15 % of a BERT-tiny step, bench/RESULTS.md.)"""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        y = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 up to fp32; fp64 stays fp64
        return torch.addcmul(y * cos, _swap_halves(y), sin).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        g = grad.to(torch.promote_types(grad.dtype, torch.float32))
        return torch.addcmul(_swap_halves(g * sin), g, cos).to(grad.dtype), None, None


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection, through PyTorch's SDPA kernels."""

    def __init__(self, config: BertConfig, layer: int = 0):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.bias)
        self.out = nn.Linear(config.hidden_size, config.hidden_size, bias=config.bias)
        self.attention_dropout = config.attention_dropout
        self.rotary = None
        if config.position == "rotary":
            theta = config.rope_theta if config.is_global(layer) else config.local_rope_theta
            self.rotary = Rotary(config.head_dim, config.max_position_embeddings, theta)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, queries: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """queries (B, Q, H), the rows of x at positions `rows` (B, Q): attend from these rows only
        (keys and values still come from all of x)."""
        B, T, H = x.shape
        N, D = self.num_heads, H // self.num_heads
        if queries is None:
            qkv = self.qkv(x).view(B, T, 3, N, D)
            if self.rotary is not None:  # queries and keys turned in one pass
                q, k = self.rotary(qkv[:, :, :2], None).unbind(dim=2)
                v = qkv[:, :, 2]
            else:
                q, k, v = qkv.unbind(dim=2)  # 3 x (B, T, N, D)
        else:
            w_q, w_kv = self.qkv.weight.split([H, 2 * H])
            b_q, b_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([H, 2 * H])
            q = F.linear(queries, w_q, b_q).view(B, -1, N, D)  # (B, Q, N, D)
            k, v = F.linear(x, w_kv, b_kv).view(B, T, 2, N, D).unbind(dim=2)
            if self.rotary is not None:
                q, k = self.rotary(q, rows), self.rotary(k, None)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, N, T or Q, D)
        dropout = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)  # (B, N, Q, D)
        return self.out(y.transpose(1, 2).reshape(B, -1, H))


class EncoderLayer(nn.Module):
    """BERT's post-LN block: x = LN(x + Attn(x)); x = LN(x + FFN(x)) (section 3), or the pre-LN
    block: x = x + Attn(LN(x)); x = x + FFN(LN(x)), whose first layer has no attention norm (the
    embeddings were just normed). FFN: GELU (BERT) or GeGLU."""

    def __init__(self, config: BertConfig, layer: int = 0):
        super().__init__()
        self.pre_norm = config.norm == "pre"
        self.glu = config.ffn == "geglu"
        self.is_global = config.is_global(layer)
        self.depth = config.num_layers
        self.attention = SelfAttention(config, layer)
        first_pre_norm = self.pre_norm and layer == 0
        self.attention_norm = (nn.Identity() if first_pre_norm else
                               nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias))
        ffn_width = 2 * config.intermediate_size if self.glu else config.intermediate_size
        self.ffn_in = nn.Linear(config.hidden_size, ffn_width, bias=config.bias)
        self.ffn_out = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.bias)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ffn_in(x)
        if self.glu:
            value, gate = h.chunk(2, dim=-1)
            return self.ffn_out(F.gelu(value) * gate)
        return self.ffn_out(F.gelu(h))  # exact (erf) GELU, as BERT's TF code

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor | None = None) -> torch.Tensor:
        """rows (B, Q): compute the output only at these positions, (B, Q, H) instead of (B, T, H)."""
        if self.pre_norm:
            h = self.attention_norm(x)  # the keys and values need every position normed
            queries = None if rows is None else gather_rows(h, rows)
            residual = x if rows is None else gather_rows(x, rows)
            x = residual + self.dropout(self.attention(h, mask, queries, rows))  # (B, T or Q, H)
            return x + self.dropout(self.ffn(self.ffn_norm(x)))
        queries = None if rows is None else gather_rows(x, rows)
        residual = x if rows is None else queries
        x = self.attention_norm(residual + self.dropout(self.attention(x, mask, queries, rows)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


def gather_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(B, T, H) at positions rows (B, Q) -> (B, Q, H)."""
    return x.gather(1, rows[..., None].expand(-1, -1, x.shape[-1]))


class Pooler(nn.Module):
    """tanh(W h_[CLS] + b): the sentence-level feature for NSP and classification."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))  # (B, H)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.num_layers))
        self.final_norm = (nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.bias)
                           if config.norm == "pre" else None)
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
        masks = LayerMasks(attention_mask, x.shape[1], self.config.local_window, x.device)
        for layer in self.layers[:-1]:
            x = layer(x, masks.of(layer))
        x = self.layers[-1](x, masks.of(self.layers[-1], rows), rows)  # (B, T or Q, H)
        return x if self.final_norm is None else self.final_norm(x)

    def layer_states(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                     attention_mask: torch.Tensor | None = None):
        """Yields the embedding output, then each layer's output (B, T, H): num_layers + 1 tensors.

        Feature-based use (Devlin et al. 2019, section 5.3) reads chosen layers from here, so that
        forward() needs no "return every layer" switch.
        """
        x = self.embeddings(input_ids, token_type_ids)
        yield x
        masks = LayerMasks(attention_mask, x.shape[1], self.config.local_window, x.device)
        for i, layer in enumerate(self.layers):
            x = layer(x, masks.of(layer))
            last = i == len(self.layers) - 1
            yield self.final_norm(x) if last and self.final_norm is not None else x


def attention_bias(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) 1/0 padding mask -> (B, 1, 1, T) boolean "may attend" mask for SDPA.

    Callers pass None when nothing is padded (the batch assembler knows it on the host), so that
    SDPA can take its fastest kernel; checking here would cost a device-to-host sync every forward.
    """
    if attention_mask is None:
        return None
    return attention_mask.bool()[:, None, None, :]


class LayerMasks:
    """The attention masks of one forward: global layers get the padding mask; sliding-window layers
    the band |i - j| <= window / 2 within it, built once and only when the sequence outgrows the band."""

    def __init__(self, attention_mask: torch.Tensor | None, length: int, window: int, device: torch.device):
        self.padding = attention_bias(attention_mask)  # (B, 1, 1, T) or None
        self.local = self.padding
        # An ONNX graph is traced once at a short example, so it must always build the band: a branch
        # on the length would be frozen at the example's and long inputs would attend globally.
        if window and (length > window // 2 + 1 or torch.onnx.is_in_onnx_export()):
            idx = torch.arange(length, device=device)
            offset = idx[:, None] - idx[None, :]  # (T, T)
            band = (offset.abs() <= window // 2)[None, None]  # (1, 1, T, T)
            if self.padding is not None:
                # A padded query far from every real token would have no key left, and SDPA turns an
                # empty row into NaN, which 0-weights do not stop; letting each position see itself
                # keeps every row non-empty and changes nothing at the real positions.
                band = (band & self.padding) | (offset == 0)
            self.local = band

    def of(self, layer: "EncoderLayer", rows: torch.Tensor | None = None) -> torch.Tensor | None:
        """The mask for `layer`; with rows (B, Q), a band's rows at those queries (B, 1, Q, T)."""
        mask = self.padding if layer.is_global else self.local
        if rows is None or mask is None or mask.shape[2] == 1:
            return mask
        B, Q, T = rows.shape[0], rows.shape[1], mask.shape[-1]
        return mask.expand(B, 1, T, T).gather(2, rows[:, None, :, None].expand(B, 1, Q, T))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: truncated normal(0, 0.02) weights, zero biases, unit LayerNorm.
    In a pre-LN block each layer's output projections add straight onto the residual stream, so they
    start at std / sqrt(2 x layers) (GPT-2, ModernBERT) and the stream's variance stays near 1."""
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
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, EncoderLayer) and m.pre_norm:
            scaled = std / math.sqrt(2 * m.depth)
            for linear in (m.attention.out, m.ffn_out):
                nn.init.trunc_normal_(linear.weight, std=scaled, a=-2 * scaled, b=2 * scaled)
