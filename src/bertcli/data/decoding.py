"""Bytes to lines, for every text bertcli reads: corpus inputs, task files, and the lines that
tokenize encode, embed and predict answer one for one.

Sources: files or stdin ("-"), plain, gzip or zstd (told by their first bytes, not their names).
UTF-8 with or without a BOM; lines end with LF, CRLF or a lone CR; NUL bytes mean a binary file.
Errors name the file and line; a bad UTF-8 line can instead be skipped and counted.
"""

from __future__ import annotations

import gzip
import io
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from bertcli.errors import UserError

GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
READ_BYTES = 1 << 20  # corpus inputs are decoded in blocks of about this size
BATCH_BYTES = 1 << 22  # line-for-line readers take up to this much (what has arrived, on a pipe)


@dataclass
class LineCount:
    """What decoding counted: lines read and invalid UTF-8 lines skipped (InputReport has the same)."""

    lines: int = 0
    skipped_lines: int = 0


class _Counted(io.RawIOBase):
    """Counts the bytes read from a stream (compressed bytes, for MB/s)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.count = raw, 0
        # read1: what has arrived, so that a line typed into a pipe is answered without waiting
        self._read = getattr(raw, "read1", raw.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


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


def open_input(path: str, flag: str = "--input") -> tuple[BinaryIO, _Counted, str]:
    """A binary stream of the decompressed input, the counter of bytes read, and the compression."""
    raw = sys.stdin.buffer if path == "-" else open_input_file(Path(path), flag)
    counted = _Counted(raw)
    buffered = io.BufferedReader(counted, 1 << 20)
    magic = buffered.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb"), counted, "gzip"
    if magic == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise UserError(f"{path}: is zstd-compressed and the zstandard package is missing; "
                            f"pip install 'bertcli[corpus]' (or zstandard), or decompress it first")
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, 1 << 20), counted, "zstd"
    return buffered, counted, "none"


def decode_blocks(stream: BinaryIO, name: str, count: LineCount, invalid_utf8: str = "error", skip_hint: str = "",
                  flag: str = "--input", block_bytes: int = READ_BYTES, partial: bool = False) -> Iterator[list[str]]:
    """Decoded lines without their line ends, a block of about `block_bytes` at a time; errors name
    the file and line. `partial` takes what the stream has (a pipe: each line as it arrives) rather
    than waiting for a full block.

    Blocks, not single lines: decoding and splitting a block at once is several times faster than
    a line at a time, and the stages after this one pass most blocks on whole (a generator step per
    line of a 200 MB input would cost more than everything else the main process does).
    """
    read = getattr(stream, "read1", stream.read) if partial else stream.read
    number = 0
    rest = b""
    try:
        while True:
            block = read(block_bytes)
            data = rest + block
            if not data:
                return
            cut = len(data) if not block else data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            chunk, rest = data[:cut], data[cut:]
            if number == 0 and chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            if b"\x00" in chunk:
                line = number + chunk[:chunk.index(b"\x00")].count(b"\n") + 1
                raise UserError(f"{name}:{line}: looks binary (NUL bytes); {flag} takes UTF-8 text")
            try:
                lines = _split_lines(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                lines = _split_lines_each(_decode_each(chunk, name, number, count, invalid_utf8, skip_hint))
            if lines and lines[-1] == "":
                lines.pop()  # the newline that ends the block's last line does not start another
            number += chunk.count(b"\n") + (not chunk.endswith(b"\n"))
            yield lines
            if not block:
                return
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        raise UserError(f"{name}:{number + 1}: compressed input is damaged or cut short ({exc}); "
                        f"check the download or recompress it") from None
    except Exception as exc:  # zstandard.ZstdError and the like
        if type(exc).__module__.startswith("zstandard") or "zstd" in type(exc).__name__.lower():
            raise UserError(f"{name}:{number + 1}: compressed input is damaged ({exc}); "
                            f"check the download or recompress it") from None
        raise
    finally:
        count.lines = number


def _split_lines(text: str) -> list[str]:
    """Lines ended by LF, CRLF or a lone CR (old Mac files)."""
    if "\r" not in text:
        return text.split("\n")
    if text.count("\r") == text.count("\r\n"):  # plain CRLF: every CR ends a line before its LF
        return text.replace("\r\n", "\n").split("\n")
    return _split_lines_each(text.split("\n"))


def _split_lines_each(lines: list[str]) -> list[str]:
    # a line's trailing CRs end it; a CR inside it ends a line too
    out: list[str] = []
    for line in lines:
        if "\r" in line:
            out.extend(line.rstrip("\r").split("\r"))
        else:
            out.append(line)
    return out


def _decode_each(chunk: bytes, name: str, number: int, count: LineCount, invalid_utf8: str,
                 skip_hint: str) -> list[str]:
    """A block's lines decoded one by one: the bad one is reported by its line (or skipped)."""
    lines = []
    for i, raw in enumerate(chunk.split(b"\n"), start=number + 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if invalid_utf8 != "skip":
                fix = "convert the file (e.g. iconv -f latin1 -t utf-8)" + (f" or {skip_hint}" if skip_hint else "")
                raise UserError(f"{name}:{i}: not valid UTF-8; {fix}") from None
            count.skipped_lines += 1
    return lines


def iter_line_batches(file: str, flag: str = "FILE") -> Iterator[list[str]]:
    """Lists of lines (line ends removed, empty lines kept) from a file, a .gz/.zst file or stdin ("-"),
    so that a caller can hand whole batches to a library and answer line i of the input with line i
    of its output; on a pipe a batch holds what has arrived."""
    stream, _, _ = open_input(file, flag)
    try:
        yield from decode_blocks(stream, "<stdin>" if file == "-" else file, LineCount(), flag=flag,
                                 block_bytes=BATCH_BYTES, partial=True)
    finally:
        if file != "-":
            stream.close()


def iter_text_lines(file: str, flag: str = "FILE") -> Iterator[str]:
    """One text per line (empty lines included), streamed from a file or stdin ("-")."""
    return itertools.chain.from_iterable(iter_line_batches(file, flag))


def read_text_file(path: str | Path, flag: str = "--input") -> str:
    """The whole file (or stdin for "-") as text with '\\n' line ends, for readers that parse a
    whole file (TSV, CoNLL, SQuAD JSON)."""
    return "".join(line + "\n" for line in iter_text_lines(str(path), flag))
