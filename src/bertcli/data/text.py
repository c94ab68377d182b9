"""Reading user-supplied text files: UTF-8 (with or without BOM), any line ending, no binaries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

from bertcli.errors import UserError


def read_text_file(path: str | Path, flag: str = "--input") -> str:
    """The whole file (or stdin for "-") as text with '\n' line ends; a one-line UserError for
    missing, unreadable or binary input."""
    if str(path) == "-":
        return decode_text(sys.stdin.buffer.read(), "<stdin>", flag)
    path = Path(path)
    with open_input_file(path, flag) as handle:
        data = handle.read()
    return decode_text(data, str(path), flag)


def open_input_file(path: Path, flag: str = "--input"):
    """`path` opened for binary reading; a one-line UserError when it is missing, a folder or unreadable."""
    if not path.exists():
        raise UserError(f"{path}: file not found; check the path given to {flag}")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; pass the text files inside it (e.g. {path}/*.txt)")
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror}); check its permissions")


def decode_text(data: bytes, name: str, flag: str = "--input") -> str:
    if b"\x00" in data:
        raise UserError(f"{name}: looks binary (NUL bytes); {flag} takes UTF-8 text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{name}:{line}: not valid UTF-8; convert it to UTF-8 (e.g. iconv -t utf-8)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def iter_text_lines(file: str, flag: str = "FILE"):
    """One text per line, from a file or streamed from stdin ("-"), so that line i of the output
    answers line i of the input (empty lines included)."""
    if file == "-":
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            yield decode_text(raw, f"<stdin>:{number}", flag).rstrip("\n")
        return
    lines = read_text_file(file, flag).split("\n")
    if lines[-1] == "":  # the newline that ends the last line does not start another
        lines.pop()
    yield from lines


BATCH_BYTES = 1 << 22


def iter_line_batches(file: str, flag: str = "FILE") -> Iterator[list[str]]:
    """Lists of lines (line ends removed, empty lines kept) from a file, a .gz/.zst file or stdin ("-").

    The input is read in blocks of up to BATCH_BYTES and each block is decoded at once, so a
    caller can hand whole batches to a library; on a pipe a block holds what has arrived, so an
    interactive stream gets each answer as soon as its line is complete.
    """
    from bertcli.data.inputs import open_input

    name = "<stdin>" if file == "-" else file
    stream, _, _ = open_input(file)
    read = getattr(stream, "read1", stream.read)
    rest, line_number, first = b"", 0, True
    try:
        while True:
            try:
                block = read(BATCH_BYTES)
            except (EOFError, OSError) as exc:
                raise UserError(f"{name}: compressed input is damaged or cut short ({exc}); check the download")
            data = rest + block
            if not block:
                if not data:
                    return
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
            chunk, rest = data[:cut], data[cut:]
            if first and chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            first = False
            if b"\x00" in chunk:
                line = line_number + chunk[:chunk.index(b"\x00")].count(b"\n") + 1
                raise UserError(f"{name}:{line}: looks binary (NUL bytes); {flag} takes UTF-8 text")
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = line_number + chunk[:exc.start].count(b"\n") + 1
                raise UserError(f"{name}:{line}: not valid UTF-8; convert it to UTF-8 (e.g. iconv -t utf-8)")
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()  # the newline that ends the last line does not start another
            line_number += len(lines)
            yield lines
            if not block:
                return
    finally:
        if file != "-":
            stream.close()
