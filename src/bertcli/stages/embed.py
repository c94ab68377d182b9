"""`bertcli embed`: one sentence vector per input line, as JSON lines on stdout.

Pooling: `mean` averages the last hidden states over the real tokens ([CLS] and [SEP] included,
padding excluded), as sentence-transformers does, so an imported all-MiniLM-L6-v2 with
`--pooling mean --normalize` gives that model's published embeddings; `cls` takes the [CLS]
hidden state; `pooler` takes BERT's tanh pooler output (the feature NSP was trained on).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from bertcli.checkpoint import ENCODER_PREFIX, load_checkpoint
from bertcli.data.text import iter_text_lines
from bertcli.errors import UserError
from bertcli.model import BertEncoder
from bertcli.model.hf import POOLER
from bertcli.runtime import console, pick_device
from bertcli.tokenizer import Tokenizer

POOLINGS = ("mean", "cls", "pooler")


DEFAULT_MAX_SEQ_LEN = 128  # all of sst2 and most sentences fit; sentence-transformers uses 128-512


def run(checkpoint: Path, file: str, pooling: str = "mean", normalize: bool = False, batch_size: int = 64,
        max_seq_len: int | None = None, device: str = "auto") -> None:
    if pooling not in POOLINGS:
        raise UserError(f"--pooling {pooling}: unknown; choose one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    ckpt = load_checkpoint(checkpoint)
    max_seq_len = max_seq_len or min(DEFAULT_MAX_SEQ_LEN, ckpt.config.max_position_embeddings)
    if not 2 <= max_seq_len <= ckpt.config.max_position_embeddings:
        raise UserError(f"--max-seq-len {max_seq_len}: must be between 2 and the model's "
                        f"{ckpt.config.max_position_embeddings} positions")
    untrained = [name for name in ckpt.extra.get("missing", []) if name in POOLER]
    if pooling == "pooler" and untrained:
        raise UserError(f"{ckpt.folder}: the pooler was not in the imported model ({', '.join(untrained)} "
                        f"initialised at random); use --pooling mean or cls")
    texts = list(iter_text_lines(file))
    target = pick_device(device)
    encoder = load_encoder(ckpt).to(target)
    tokenizer = ckpt.tokenizer()
    vectors, truncated = embed_texts(encoder, tokenizer, texts, pooling, normalize, batch_size, max_seq_len)
    if truncated:
        console.print(f"note: {truncated:,} of {len(texts):,} lines were longer than {max_seq_len} tokens "
                      f"and were truncated (--max-seq-len)")
    out = sys.stdout
    for vector in vectors.tolist():
        out.write(json.dumps({"embedding": vector}) + "\n")
    out.flush()
    console.print(f"embedded {len(texts):,} lines with {ckpt.folder} ({pooling} pooling"
                  f"{', L2-normalised' if normalize else ''}, {vectors.shape[1]} dimensions)")


def load_encoder(ckpt) -> BertEncoder:
    encoder = BertEncoder(ckpt.config)
    state = {k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()}
    encoder.load_state_dict(state)  # strict: every encoder weight comes from the checkpoint
    return encoder.eval()


@torch.inference_mode()
def embed_texts(encoder: BertEncoder, tokenizer: Tokenizer, texts: list[str], pooling: str, normalize: bool,
                batch_size: int, max_seq_len: int) -> tuple[torch.Tensor, int]:
    """(N, H) fp32 vectors in input order, and how many texts were truncated.

    Texts are batched by length so that a batch pads little; padding is masked out of attention
    and of the mean, so the vectors do not depend on the batching.
    """
    device = next(encoder.parameters()).device
    bodies = tokenizer.encode_batch(texts) if texts else []
    ids = [[tokenizer.cls_id, *body[:max_seq_len - 2], tokenizer.sep_id] for body in bodies]
    truncated = sum(len(body) > max_seq_len - 2 for body in bodies)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    vectors = torch.empty(len(ids), encoder.config.hidden_size)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(ids[i]) for i in chunk)
        input_ids = torch.full((len(chunk), T), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
            mask[row, :len(ids[i])] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        hidden, pooled = encoder(input_ids, attention_mask=mask)  # (B, T, H), (B, H)
        vectors[chunk] = pool(hidden, pooled, mask, pooling).float().cpu()
    if normalize:
        vectors = F.normalize(vectors, p=2, dim=1)
    return vectors, truncated


def pool(hidden: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        return pooled
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)  # (B, H)
