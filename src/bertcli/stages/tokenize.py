"""`bertcli tokenize`: train a SentencePiece tokenizer; encode and decode lines of text."""

from __future__ import annotations

import sys
from pathlib import Path

from bertcli import artifacts, config
from bertcli.config import TokenizeConfig
from bertcli.data.text import iter_lines, iter_text_lines
from bertcli.errors import UserError
from bertcli.console import console
from bertcli.tokenizer import Tokenizer, load_tokenizer, train_sentencepiece, write_tokenizer_manifest


def train(cfg: TokenizeConfig) -> Path:
    if not cfg.input:
        raise UserError("tokenize train: no input; pass --input FILE (repeatable)")
    out = artifacts.check_output_target(cfg.out, "tokenizer", inputs=cfg.input)
    lines = list(iter_lines(cfg.input))  # reads every file first, so a bad input fails before training
    if not lines:
        raise UserError(f"{cfg.input[0]}: no text to train on; give files with text in them")
    with artifacts.staged_folder(out) as tmp:
        train_sentencepiece(lines, tmp, cfg.vocab_size, cfg.model_type, cfg.lowercase,
                            cfg.character_coverage, cfg.max_sentences, cfg.seed)
        tokenizer = load_tokenizer(tmp)
        write_tokenizer_manifest(tmp, tokenizer, config.to_dict(cfg), [Path(p) for p in cfg.input])
    console.print(f"tokenizer: {out} ({cfg.model_type}, {cfg.vocab_size} pieces, "
                  f"{'lower-cased' if cfg.lowercase else 'cased'}, trained on {len(lines):,} lines)")
    return out


def load_any(path: Path) -> Tokenizer:
    """A tokenizer folder, or the tokenizer inside a checkpoint, run or corpus folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; pass a tokenizer folder from `bertcli tokenize train`")
    for candidate in (path, path / "tokenizer", path / "final" / "tokenizer", path / "best" / "tokenizer"):
        if (candidate / "tokenizer_config.json").is_file():
            return load_tokenizer(candidate)
    raise UserError(f"{path}: holds no tokenizer; pass a folder from `bertcli tokenize train`")


def encode(tokenizer_path: Path, file: str, as_pieces: bool = False) -> None:
    tokenizer = load_any(tokenizer_path)
    out = sys.stdout
    for line in iter_text_lines(file):
        ids = tokenizer.encode(line)
        out.write(" ".join(tokenizer.pieces(ids) if as_pieces else map(str, ids)) + "\n")
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
