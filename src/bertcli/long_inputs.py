"""Texts longer than the model's window: cut into overlapping windows instead of truncated.

A window holds `width` tokens (the model's max_seq_len less [CLS] and [SEP]); neighbouring windows
share `stride` tokens, so every token is read with some context on both sides except at the text's
ends. `embed` averages a text's window vectors (weighted by their tokens for mean pooling) and
`predict` averages its windows' outputs (logits for cls, scores for regression): the pooling the
sliding-window evaluations of long-document classifiers use.
"""

from __future__ import annotations

import numpy as np

from bertcli.errors import UserError


def check_stride(stride: int, width: int, flag: str = "--stride") -> None:
    if not 0 <= stride < width:
        raise UserError(f"{flag} {stride}: windows of {width} tokens must share fewer tokens than they hold; "
                        f"choose {flag} between 0 and {width - 1}")


def windows(body: list[int], width: int, stride: int) -> list[list[int]]:
    """`body` as windows of at most `width` tokens, each beginning `width - stride` after the one
    before, the last ending at the body's end; a body that fits is its own single window."""
    if len(body) <= width:
        return [list(body)]
    step = width - stride
    starts = list(range(0, len(body) - width + 1, step))
    if starts[-1] + width < len(body):
        starts.append(len(body) - width)
    return [list(body[start:start + width]) for start in starts]


def pool_windows(outputs: list[np.ndarray], owners: list[int], count: int,
                 weights: list[float] | None = None) -> list[np.ndarray]:
    """Per text (0..count-1), the mean of its windows' outputs (weighted by `weights` if given)."""
    sums: list[np.ndarray | None] = [None] * count
    totals = np.zeros(count, dtype=np.float64)
    for index, (owner, out) in enumerate(zip(owners, outputs)):
        weight = 1.0 if weights is None else float(weights[index])
        value = out.astype(np.float64) * weight
        sums[owner] = value if sums[owner] is None else sums[owner] + value
        totals[owner] += weight
    return [(total_sum / total).astype(np.float32) for total_sum, total in zip(sums, totals)]


def count_truncated(examples, tokenizer, max_seq_len: int) -> int:
    """How many labelled examples (text, or text pair) do not fit max_seq_len with their special tokens."""
    firsts = tokenizer.encode_batch(examples.texts)
    if examples.pairs is None:
        return sum(len(a) + 2 > max_seq_len for a in firsts)
    seconds = tokenizer.encode_batch(examples.pairs)
    return sum(len(a) + len(b) + 3 > max_seq_len for a, b in zip(firsts, seconds))


def windowed_outputs(model, examples, tokenizer, max_seq_len: int, stride: int, batch_size: int) -> list[np.ndarray]:
    """A sequence-level model's output for each single-text example, averaged over its windows."""
    from bertcli.tasks.labelled import EncodedExamples
    from bertcli.train.evaluation import forward_all

    width = max_seq_len - 2
    check_stride(stride, width)
    rows, owners = [], []
    for index, body in enumerate(tokenizer.encode_batch(examples.texts)):
        for window in windows(body, width, stride):
            rows.append(np.asarray([tokenizer.cls_id, *window, tokenizer.sep_id], dtype=np.int64))
            owners.append(index)
    encoded = EncodedExamples(rows, [np.zeros_like(row) for row in rows], None)
    outputs = forward_all(model, encoded, tokenizer.pad_id, batch_size) if rows else []
    return pool_windows(outputs, owners, len(examples.texts))
