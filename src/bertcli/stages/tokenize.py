"""`bertcli tokenize`: train a SentencePiece tokenizer; encode and decode lines of text."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

from bertcli import artifacts, config
from bertcli.config import TokenizeConfig
from bertcli.data.decoding import iter_line_batches, iter_text_lines
from bertcli.data.inputs import InputReport, ReadSettings, read_documents
from bertcli.data.sentences import split_sentences
from bertcli.errors import UserError
from bertcli.console import console
from bertcli.folder_lock import writes_output
from bertcli.tokenizer import (Tokenizer, VocabularyTooLarge, load_tokenizer, settings_path, train_sentencepiece,
                               write_tokenizer_manifest)


@writes_output
def train(cfg: TokenizeConfig) -> Path:
    if not cfg.input:
        raise UserError("tokenize train: no input; pass --input FILE (repeatable)")
    out = artifacts.check_output_target(cfg.out, "tokenizer", inputs=cfg.input)
    counted = _Counter(training_texts(cfg.input, ReadSettings(invalid_utf8=cfg.invalid_utf8)))
    with artifacts.staged_folder(out) as tmp:
        # the texts stream into SentencePiece, which keeps a random sample of cfg.max_sentences of
        # them (its own reservoir sampling), so memory does not grow with the input
        try:
            train_sentencepiece(counted, tmp, cfg.vocab_size, cfg.model_type, cfg.lowercase,
                                cfg.character_coverage, cfg.max_sentences, cfg.seed)
        except UserError as exc:
            if counted.error is not None:
                raise counted.error from None  # the input's own error (file and line), not SentencePiece's
            if not counted.count:
                raise UserError(f"{cfg.input[0]}: no text to train on; give files with text in them") from None
            if isinstance(exc, VocabularyTooLarge):
                raise UserError(vocabulary_advice(exc, counted.count, cfg)) from None
            raise
        tokenizer = load_tokenizer(tmp)
        write_tokenizer_manifest(tmp, tokenizer, config.to_dict(cfg), [Path(p) for p in cfg.input if p != "-"])
    sampled = f", a sample of {cfg.max_sentences:,}" if counted.count > cfg.max_sentences else ""
    console.print(f"tokenizer: {out} ({cfg.model_type}, {cfg.vocab_size} pieces, "
                  f"{'lower-cased' if cfg.lowercase else 'cased'}, trained on {counted.count:,} lines{sampled})")
    return out


def vocabulary_advice(exc: VocabularyTooLarge, lines: int, cfg: TokenizeConfig) -> str:
    """What reaches the vocabulary size asked for: all the text (when SentencePiece sampled it), a
    BPE model (which merges its way to sizes a unigram model's seed pieces cannot), or a smaller
    size or more text."""
    fixes = []
    if lines > cfg.max_sentences:
        fixes.append(f"train on all {lines:,} lines instead of a sample of {cfg.max_sentences:,} "
                     f"(--set max_sentences={lines})")
    if cfg.model_type == "unigram":
        fixes.append("use --model-type bpe")
    fits = f" ({exc.limit:,} pieces fit this text)" if exc.limit else ""
    return (f"tokenize train: {lines:,} lines of text yield too few distinct {cfg.model_type} pieces for "
            f"{cfg.vocab_size:,}: {''.join(f + ', ' for f in fixes)}{'or ' if fixes else ''}lower --vocab-size "
            f"or give more text{fits}")


class _Counter:
    """An iterator that counts what passes through it."""

    def __init__(self, items: Iterator[str]):
        self.items, self.count, self.error = items, 0, None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            item = next(self.items)
        except UserError as exc:
            self.error = exc
            raise
        self.count += 1
        return item


def training_texts(paths: list[str], settings: ReadSettings = ReadSettings()) -> Iterator[str]:
    """Lines of text for SentencePiece from inputs in any build-corpus format: a raw book's wrapped
    lines, a sentence per line, and long paragraphs or records split into sentences (SentencePiece
    skips lines over 4192 bytes)."""
    for path in paths:
        report = InputReport(path)
        for piece in read_documents(path, settings, report):
            for text in piece.texts:
                if report.format == "raw":
                    yield from (line.strip() for line in text.split("\n") if line.strip())
                elif len(text) > 1000:
                    yield from split_sentences(text)
                else:
                    yield text


def load_any(path: Path) -> Tokenizer:
    """A tokenizer folder, or the tokenizer inside a checkpoint, run or corpus folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; pass a tokenizer folder from `bertcli tokenize train`")
    for candidate in (path, path / "tokenizer", path / "final" / "tokenizer", path / "best" / "tokenizer"):
        if settings_path(candidate) is not None:
            return load_tokenizer(candidate)
    raise UserError(f"{path}: holds no tokenizer; pass a folder from `bertcli tokenize train`")


def encode(tokenizer_path: Path, file: str, as_pieces: bool = False) -> None:
    """One line of ids (or pieces) per input line. Lines go to the tokenizer in large batches (one
    call, all threads), and ids become text through a table, so the command keeps the library's speed."""
    tokenizer = load_any(tokenizer_path)
    out = sys.stdout
    names = None if as_pieces else [str(i) for i in range(tokenizer.vocab_size)]
    for lines in iter_line_batches(file):
        encoded = tokenizer.encode_batch(lines)
        if as_pieces:
            text = "\n".join(" ".join(tokenizer.pieces(ids)) for ids in encoded)
        else:
            text = "\n".join([" ".join([names[i] for i in ids]) for ids in encoded])
        out.write(text + "\n")
        if file == "-":
            out.flush()  # a pipe gets each batch's answers at once
    out.flush()


def decode(tokenizer_path: Path, file: str) -> None:
    tokenizer = load_any(tokenizer_path)
    out = sys.stdout
    for number, line in enumerate(iter_text_lines(file), start=1):
        try:
            ids = [int(token) for token in line.split()]
        except ValueError:
            raise UserError(f"{file}:{number}: expected space-separated token ids, got {line[:40]!r}")
        bad = [i for i in ids if not 0 <= i < tokenizer.vocab_size]
        if bad:
            raise UserError(f"{file}:{number}: id {bad[0]} is outside the vocabulary (0..{tokenizer.vocab_size - 1})")
        out.write(tokenizer.decode(ids) + "\n")
    out.flush()
