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


def word_windows(pieces: list[list[int]], width: int, stride: int) -> list[tuple[int, int]]:
    """A sentence's words (each its pieces) as (first word, end word) windows of at most `width`
    pieces; the next window starts at the first word within `stride` pieces of the window's end.
    A single word longer than `width` is a window of its own (its pieces cut to `width`)."""
    starts = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])  # piece offset of each word
    spans, first = [], 0
    while first < len(pieces):
        end = first + 1
        while end < len(pieces) and starts[end + 1] - starts[first] <= width:
            end += 1
        spans.append((first, end))
        if end == len(pieces):
            break
        overlap_from = starts[end] - stride
        first = max(first + 1, int(np.searchsorted(starts, overlap_from, side="left")))
        first = min(first, end)
    return spans


def windowed_word_outputs(model, sentences, tokenizer, max_seq_len: int, stride: int,
                          batch_size: int) -> list[np.ndarray]:
    """A token-level (ner) model's logits for every word of every sentence, (words, labels) each:
    a sentence longer than the model's window is read as overlapping windows of whole words, and
    each word takes its logits from the window where it has the most context on both sides (as
    BERT's SQuAD code picks a token's best window)."""
    from bertcli.tasks.labelled import EncodedExamples
    from bertcli.tasks.words import word_pieces
    from bertcli.train.evaluation import forward_all

    width = max_seq_len - 2
    check_stride(stride, width)
    flat = word_pieces(tokenizer, [w for sentence in sentences.words for w in sentence])
    rows, owners, firsts_of_rows, word_ranges = [], [], [], []
    position = 0
    for index, sentence in enumerate(sentences.words):
        pieces = flat[position:position + len(sentence)]
        position += len(sentence)
        for first, end in word_windows(pieces, width, stride):
            ids, firsts = [tokenizer.cls_id], []
            for word in pieces[first:end]:
                firsts.append(len(ids))
                ids.extend(word[:width - (len(ids) - 1)])
            ids.append(tokenizer.sep_id)
            rows.append(np.asarray(ids, dtype=np.int64))
            owners.append(index)
            firsts_of_rows.append(firsts)
            word_ranges.append((first, end))
    encoded = EncodedExamples(rows, [np.zeros_like(row) for row in rows], None)
    outputs = forward_all(model, encoded, tokenizer.pad_id, batch_size) if rows else []
    best: list[list[tuple[float, np.ndarray] | None]] = [[None] * len(s) for s in sentences.words]
    for row, owner, firsts, (first, end) in zip(outputs, owners, firsts_of_rows, word_ranges):
        length = len(row) - 1  # [SEP]'s position
        for offset, piece in enumerate(firsts):
            context = min(piece - 1, length - piece - 1)  # pieces on the shorter side
            current = best[owner][first + offset]
            if current is None or context > current[0]:
                best[owner][first + offset] = (context, row[piece])
    labels = outputs[0].shape[-1] if outputs else 0
    return [np.stack([b[1] for b in words]) if words else np.zeros((0, labels), np.float32) for words in best]
