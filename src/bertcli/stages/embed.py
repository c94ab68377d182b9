"""`bertcli embed`: one sentence vector per input line, as JSON lines on stdout.

Pooling: `mean` averages the last hidden states over the real tokens ([CLS] and [SEP] included,
padding excluded), as sentence-transformers does, so an imported all-MiniLM-L6-v2 with
`--pooling mean --normalize` gives that model's published embeddings; `cls` takes the [CLS]
hidden state; `pooler` takes BERT's tanh pooler output (the feature NSP was trained on).

`--layers` picks the features as the BERT paper's feature-based table does (last, second_to_last,
sum_last_four, concat_last_four, embeddings); `--tokens` writes every token's vector instead of a
pooled one (the job of Google's extract_features.py); `--npy FILE` puts the vectors in a NumPy
array and leaves JSON lines with the row (or token rows) of each input line; `--fast` runs the
linear layers in dynamic int8 (CPU), a little less exact and much faster.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bertcli.checkpoint import load_checkpoint, load_encoder
from bertcli.config import EmbedConfig
from bertcli.data.decoding import iter_text_lines
from bertcli.errors import UserError
from bertcli.model import BertEncoder
from bertcli.model.heads import combine_layers, masked_mean
from bertcli.hf.bert_weights import POOLER
from bertcli.hf.onnx import RUNTIME_NOTES, graph_key, runtime_model
from bertcli.long_inputs import check_stride, pool_windows, windows
from bertcli.runtime import console, pick_device, quantize_linear
from bertcli.tokenizer import Tokenizer

DEFAULT_MAX_SEQ_LEN = 128  # all of sst2 and most sentences fit; sentence-transformers uses 128-512


def run(cfg: EmbedConfig) -> None:
    ckpt = load_checkpoint(cfg.checkpoint)
    pooling, layers, tokens, normalize, npy, fast = (cfg.pooling, cfg.layers, cfg.tokens, cfg.normalize,
                                                     Path(cfg.npy) if cfg.npy else None, cfg.fast)
    if layers.endswith("last_four") and ckpt.config.num_layers < 4:
        raise UserError(f"--layers {layers}: {ckpt.folder} has only {ckpt.config.num_layers} layers")
    max_seq_len = cfg.max_seq_len or min(DEFAULT_MAX_SEQ_LEN, ckpt.config.max_position_embeddings)
    if not 2 <= max_seq_len <= ckpt.config.max_position_embeddings:
        raise UserError(f"--max-seq-len {max_seq_len}: must be between 2 and the model's "
                        f"{ckpt.config.max_position_embeddings} positions")
    untrained = [name for name in ckpt.extra.get("missing", []) if name in POOLER]
    if pooling == "pooler" and untrained:
        raise UserError(f"{ckpt.folder}: the pooler was not in the imported model ({', '.join(untrained)} "
                        f"initialised at random); use --pooling mean or cls")
    texts = list(iter_text_lines(cfg.file))
    target = pick_device(cfg.device)
    encoder = load_encoder(ckpt).to(target)
    if fast:
        encoder = quantize_linear(encoder)
    tokenizer = ckpt.tokenizer()
    how = "tokens" if tokens else pooling
    with runtime_model(encoder, True, ckpt.config, cfg.runtime, graph_key(ckpt, True)) as engine:
        vectors, truncated, ids = embed_texts(engine, tokenizer, texts, how, normalize, cfg.batch_size, max_seq_len,
                                              layers, cfg.stride if cfg.long_inputs == "window" else None)
    if truncated:
        console.print(f"note: {truncated:,} of {len(texts):,} lines were longer than {max_seq_len} tokens "
                      f"and were truncated (--max-seq-len; --long-inputs window reads them whole)")
    write_vectors(sys.stdout, vectors, ids, tokenizer, tokens, npy)
    dims = vectors[0].shape[-1] if len(vectors) else 0
    console.print(f"embedded {len(texts):,} lines with {ckpt.folder} ({'per token' if tokens else pooling + ' pooling'}"
                  f", {layers}{', L2-normalised' if normalize else ''}{', int8' if fast else ''}"
                  f"{RUNTIME_NOTES[cfg.runtime]}, {dims} dimensions)"
                  f"{f'; vectors in {npy}' if npy else ''}")


def write_vectors(out, vectors: list, ids: list[list[int]], tokenizer: Tokenizer, tokens: bool,
                  npy: Path | None) -> None:
    """One JSON line per input line; with npy, the vectors go to the array and the line says where."""
    if npy is not None:
        if tokens:
            hidden = vectors[0].shape[-1] if vectors else 0
            array = np.concatenate(vectors) if vectors else np.zeros((0, hidden), np.float32)
        else:
            array = np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)
        tmp = Path(npy).with_name(Path(npy).name + ".tmp.npy")
        np.save(tmp, array.astype(np.float32))
        tmp.replace(npy)  # never a half-written array under the name asked for
    row = 0
    for i, vector in enumerate(vectors):
        if tokens:
            record = {"tokens": tokenizer.pieces(ids[i])}
            if npy is None:
                record["vectors"] = vector.tolist()
            else:
                record.update(rows=[row, row + len(vector)])
                row += len(vector)
        else:
            record = {"row": i} if npy is not None else {"embedding": vector.tolist()}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()


@torch.inference_mode()
def embed_texts(encoder: BertEncoder, tokenizer: Tokenizer, texts: list[str], pooling: str, normalize: bool,
                batch_size: int, max_seq_len: int, layers: str = "last",
                window_stride: int | None = None) -> tuple[list[np.ndarray], int, list]:
    """Per text, in input order, an fp32 vector (H,) or, for pooling "tokens", one per token (T, H);
    how many texts were truncated; and each text's token ids. With `window_stride`, a text longer
    than max_seq_len is embedded as overlapping windows whose vectors are averaged (long_inputs).

    Texts are batched by length so that a batch pads little; padding is masked out of attention
    and of the mean, so the vectors do not depend on the batching.
    """
    device = next(encoder.parameters()).device
    bodies = tokenizer.encode_batch(texts) if texts else []
    width = max_seq_len - 2
    if window_stride is None:
        pieces, owners = [body[:width] for body in bodies], list(range(len(bodies)))
        truncated = sum(len(body) > width for body in bodies)
    else:  # every window a row of its own; pooled per text below
        check_stride(window_stride, width)
        pieces, owners = [], []
        for text_index, body in enumerate(bodies):
            for window in windows(body, width, window_stride):
                pieces.append(window)
                owners.append(text_index)
        truncated = 0
    ids = [[tokenizer.cls_id, *piece, tokenizer.sep_id] for piece in pieces]
    normalize_rows = normalize and window_stride is None  # windows: normalised once pooled
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    vectors: list[np.ndarray | None] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(ids[i]) for i in chunk)
        input_ids = torch.full((len(chunk), T), tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
            mask[row, :len(ids[i])] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        if layers == "last":
            hidden, pooled = encoder(input_ids, attention_mask=mask)  # (B, T, H), (B, H)
        else:
            hidden, pooled = combine_layers(list(encoder.layer_states(input_ids, None, mask)), layers), None
        if normalize:
            hidden = F.normalize(hidden, p=2, dim=-1) if pooling == "tokens" else hidden
        out = hidden if pooling == "tokens" else pool(hidden, pooled, mask, pooling)
        if normalize_rows and pooling != "tokens":
            out = F.normalize(out.float(), p=2, dim=-1)
        out = out.float().cpu().numpy()
        for row, i in enumerate(chunk):
            vectors[i] = out[row, :len(ids[i])] if pooling == "tokens" else out[row]
    if window_stride is not None:
        # a mean over tokens stays one over the text's tokens when windows weigh by their tokens
        weights = [len(row) for row in ids] if pooling == "mean" else None
        vectors = pool_windows(vectors, owners, len(bodies), weights)
        if normalize:
            vectors = [v / max(float(np.linalg.norm(v)), 1e-12) for v in vectors]
        ids = [[tokenizer.cls_id, *body, tokenizer.sep_id] for body in bodies]
    return vectors, truncated, ids


def pool(hidden: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        return pooled
    return masked_mean(hidden, mask)  # (B, H)
