"""Reading user-supplied text files: UTF-8 (with or without BOM), any line ending, no binaries."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterator

from bertcli.errors import UserError

# Project Gutenberg wraps each book in a licence header and footer; the markers are stable.
# A marker can wrap onto a second line (43-0.txt), so it runs to its closing "***".
_PG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK[^*]*\*\*\*", re.MULTILINE | re.IGNORECASE)
_PG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK", re.MULTILINE | re.IGNORECASE)


def read_text_file(path: str | Path) -> str:
    """The whole file as text with '\\n' line ends; a one-line UserError for missing or binary input."""
    path = Path(path)
    if str(path) == "-":
        return sys.stdin.read().replace("\r\n", "\n").replace("\r", "\n")
    if not path.exists():
        raise UserError(f"{path}: file not found; check the path given to --input")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; pass the text files inside it (e.g. {path}/*.txt)")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise UserError(f"{path}: looks binary (NUL bytes); --input takes UTF-8 text files")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not valid UTF-8; convert the file to UTF-8 (e.g. iconv -t utf-8)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg book, without its licence header and footer."""
    start = _PG_START.search(text)
    if start:
        text = text[start.end():]
    end = _PG_END.search(text)
    if end:
        text = text[: end.start()]
    return text


def read_input_text(path: str | Path) -> str:
    """A text input as bertcli reads it everywhere: decoded, newlines normalised, PG boilerplate cut."""
    text = strip_gutenberg(read_text_file(path))
    if not text.strip():
        raise UserError(f"{path}: is empty (no text after reading); give a file with text in it")
    return text


def iter_lines(paths: list[str]) -> Iterator[str]:
    """Non-empty stripped lines of every input file, in order."""
    for path in paths:
        for line in read_input_text(path).split("\n"):
            line = line.strip()
            if line:
                yield line
