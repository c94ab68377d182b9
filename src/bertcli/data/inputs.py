"""Corpus inputs as people have them, read as a stream of documents.

Sources and their decoding (plain, gzip or zstd; UTF-8; any line end) are data.decoding's; a bad byte
is reported with its file and line (or skipped and counted when asked), and memory holds one
document, never the whole input.

Formats (see FORMATS; `auto` picks one from the first lines of each input):
  lines       one sentence per line, blank lines between documents: create_pretraining_data.py's
  paragraphs  one paragraph per line, split into sentences; documents end at a heading line
              (WikiText's ` = Title = `), at blank lines, or at the end of the file
  raw         hard-wrapped prose (a Project Gutenberg book): one document per file, paragraphs
              between blank lines, wrapped lines joined, then split into sentences
  jsonl       one JSON object per line, one document per record, its text in a configurable field
Project Gutenberg licence headers and footers are cut around every book in a file (several books
may follow one another), and each cut is reported.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

from bertcli.data.decoding import decode_blocks, open_input
from bertcli.config import ReadSettings
from bertcli.errors import UserError

FORMATS = ("lines", "paragraphs", "raw", "jsonl")
BOUNDARIES = ("auto", "heading", "blank", "file")
_ANY_HEADING = re.compile(r"^\s*(= )+[^=].*( =)+\s*$")  # section headings: dropped, not text

# Project Gutenberg wraps each book in a licence header and footer; the markers are stable, may be
# indented, and a START marker can wrap onto a second line (43-0.txt): it runs to its closing "***".
_PG_START = re.compile(r"^\s*\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK", re.IGNORECASE)
_PG_END = re.compile(r"^\s*\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK", re.IGNORECASE)
PG_LOOKAHEAD_LINES = 2000  # a book's header is far shorter; past this a file without a marker is all text

# How `auto` reads a sample of the first lines (after any Gutenberg cut):
SAMPLE_LINES = 2000
WRAPPED_LENGTH = (40, 100)  # a wrapped line: this long, no sentence end, the next line goes on
WRAPPED_SHARE = 0.3  # every shared Gutenberg book is above 0.5; sentence-per-line text near 0
PARAGRAPH_SHARE = 0.3  # lines holding two or more sentences; sentence-per-line text near 0
_SENTENCE_END = (".", "!", "?", '"', "'", "\u201d", "\u2019", ")", "]", ":")
_INNER_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+[\"'\u201c\u2018(\[]?[A-Z]")
RAW_PIECE_CHARS = 1 << 20  # a raw document is passed on in pieces of about this size
SKIP_HINT = "set invalid_utf8=skip to drop such lines"  # what a corpus input's bad line can do


class Piece(NamedTuple):
    """Part of a document: its texts, and whether it goes on the previous piece's document."""

    texts: list[str]  # sentences (lines format) or paragraphs to split into sentences
    continues: bool


@dataclass
class InputReport:
    """What reading one input found, for the manifest and the console."""

    path: str
    format: str = ""
    compression: str = "none"
    boundary: str = ""
    bytes: int = 0  # compressed size as read
    lines: int = 0
    skipped_lines: int = 0  # invalid UTF-8 skipped (invalid_utf8: skip)
    empty_documents: int = 0
    gutenberg_cuts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "compression": self.compression,
                **({"document_boundary": self.boundary} if self.boundary else {}),
                "bytes": self.bytes, "lines": self.lines, "skipped_invalid_utf8_lines": self.skipped_lines,
                "empty_documents": self.empty_documents, "gutenberg_cuts": self.gutenberg_cuts}


def _strip_gutenberg(blocks: Iterable[list[str]], report: InputReport) -> Iterator[list[str]]:
    """The lines of every book's body, in blocks: the licence text before each START marker and
    after each END marker is dropped. A file with no START marker in its first PG_LOOKAHEAD_LINES
    is all text. A block of a book's body without "***" is passed on whole."""
    blocks = iter(blocks)
    head: list[list[str]] = []
    for block in blocks:
        head.append(block)
        if sum(map(len, head)) >= PG_LOOKAHEAD_LINES:
            break
    has_start = any(_PG_START.match(line) for line in itertools.islice(itertools.chain.from_iterable(head),
                                                                       PG_LOOKAHEAD_LINES))
    cut = _GutenbergCut(report, inside=not has_start)
    for block in itertools.chain(head, blocks):
        if cut.inside and not cut.in_marker and not any("***" in line for line in block):
            cut.number += len(block)
            yield block
        else:
            yield cut.lines(block)
    cut.finish()


class _GutenbergCut:
    """Where a file's lines stand against its Gutenberg markers, fed a block of lines at a time."""

    def __init__(self, report: InputReport, inside: bool):
        self.report, self.inside = report, inside
        self.number = 0  # lines seen
        self.removed = self.removed_lines = 0
        self.cut_from = 1
        self.in_marker = False

    def lines(self, block: list[str]) -> list[str]:
        """The block's lines that are a book's body, marking the cuts on the report."""
        kept, cuts = [], self.report.gutenberg_cuts
        for line in block:
            self.number += 1
            if self.in_marker:  # a START marker that wrapped: up to its closing ***, part of the cut just made
                cuts[-1]["removed_chars"] += len(line) + 1
                cuts[-1]["removed_lines"] += 1
                self.in_marker = "***" not in line
                continue
            if not self.inside and _PG_START.match(line):
                self.removed += len(line) + 1
                self.removed_lines += 1
                part = "footer and header" if cuts or self.cut_from > 1 else "header"
                cuts.append({"part": part, "lines": f"{self.cut_from}-{self.number}",
                             "removed_lines": self.removed_lines, "removed_chars": self.removed})
                self.inside, self.removed, self.removed_lines = True, 0, 0
                self.in_marker = line.count("***") < 2
                continue
            if self.inside and "***" in line and _PG_END.match(line):
                self.inside, self.cut_from = False, self.number
            if self.inside:
                kept.append(line)
            else:
                self.removed += len(line) + 1
                self.removed_lines += 1
        return kept

    def finish(self) -> None:
        if not self.inside and self.removed_lines:
            self.report.gutenberg_cuts.append({"part": "footer",
                                               "lines": f"{self.cut_from}-{self.cut_from + self.removed_lines - 1}",
                                               "removed_lines": self.removed_lines, "removed_chars": self.removed})


def input_lines(path: str, report: InputReport, settings: ReadSettings = ReadSettings()) -> Iterator[str]:
    """The decoded lines of one input, Gutenberg licence text cut."""
    name = "<stdin>" if path == "-" else path
    stream, counted, report.compression = open_input(path)
    try:
        blocks = decode_blocks(stream, name, report, settings.invalid_utf8, SKIP_HINT)
        if settings.strip_gutenberg:
            blocks = _strip_gutenberg(blocks, report)
        yield from itertools.chain.from_iterable(blocks)  # flattened in C: no Python step per line
    finally:
        report.bytes = counted.count
        if path != "-":
            stream.close()


# ----------------------------------------------------------------------------- lines -> documents


def detect_format(sample: list[str], path: str = "") -> str:
    """The format of an input from its first lines (and its name, for JSONL)."""
    nonempty = [line for line in sample if line.strip()]
    if not nonempty:
        return "lines"
    stripped = path[:-3] if path.endswith(".gz") else path[:-4] if path.endswith(".zst") else path
    if stripped.endswith((".jsonl", ".ndjson")) or _looks_jsonl(nonempty[:20]):
        return "jsonl"
    wrapped = multi = 0
    for line, following in zip(sample, sample[1:] + [""]):
        line = line.rstrip()
        if not line:
            continue
        if (WRAPPED_LENGTH[0] <= len(line) <= WRAPPED_LENGTH[1] and following.strip()
                and not line.endswith(_SENTENCE_END)):
            wrapped += 1
        if _INNER_END.search(line):
            multi += 1
    if wrapped >= WRAPPED_SHARE * len(nonempty):
        return "raw"
    if multi >= PARAGRAPH_SHARE * len(nonempty):
        return "paragraphs"
    return "lines"


def _looks_jsonl(lines: list[str]) -> bool:
    if not lines[0].lstrip().startswith("{"):
        return False
    try:
        return all(isinstance(json.loads(line), dict) for line in lines[:5])
    except json.JSONDecodeError:
        return False


def detect_boundary(sample: list[str], heading: re.Pattern) -> str:
    """How paragraph-per-line documents are separated: headings if any, else blank lines when they
    group several paragraphs, else the file is one document."""
    if any(heading.match(line) for line in sample):
        return "heading"
    nonempty = sum(1 for line in sample if line.strip())
    blanks = sum(1 for a, b in zip(sample, sample[1:]) if a.strip() and not b.strip())
    return "blank" if 0 < blanks < 0.5 * nonempty else "file"


def read_documents(path: str, settings: ReadSettings, report: InputReport) -> Iterator[Piece]:
    """The documents of one input, in pieces; report gets the format and what was cut or skipped."""
    lines = input_lines(path, report, settings)
    sample = list(itertools.islice(lines, SAMPLE_LINES))
    fmt = detect_format(sample, path) if settings.input_format == "auto" else settings.input_format
    report.format = fmt
    lines = itertools.chain(sample, lines)
    name = "<stdin>" if path == "-" else path
    if fmt == "lines":
        yield from _blank_separated(lines, report)
    elif fmt == "raw":
        yield from _raw(lines, report)
    elif fmt == "jsonl":
        yield from _jsonl(lines, name, settings.text_field, report)
    else:
        heading = re.compile(settings.heading_pattern)
        boundary = settings.document_boundary
        if boundary == "auto":
            boundary = detect_boundary(sample, heading)
        report.boundary = boundary
        yield from _paragraphs(lines, boundary, heading, report)


def _blank_separated(lines: Iterable[str], report: InputReport) -> Iterator[Piece]:
    document: list[str] = []
    for line in lines:
        line = line.strip()
        if line:
            document.append(line)
        elif document:
            yield Piece(document, False)
            document = []
    if document:
        yield Piece(document, False)


def _raw(lines: Iterable[str], report: InputReport) -> Iterator[Piece]:
    """One document: its paragraphs (blank-line separated, wrapped lines kept for the splitter)."""
    paragraphs: list[str] = []
    paragraph: list[str] = []
    size, first = 0, True
    for line in itertools.chain(lines, [""]):
        if line.strip():
            paragraph.append(line)
            size += len(line)
            continue
        if paragraph:
            paragraphs.append("\n".join(paragraph))
            paragraph = []
        if size >= RAW_PIECE_CHARS:
            yield Piece(paragraphs, not first)
            paragraphs, size, first = [], 0, False
    if paragraphs:
        yield Piece(paragraphs, not first)
    elif first:
        report.empty_documents += 1


def _paragraphs(lines: Iterable[str], boundary: str, heading: re.Pattern, report: InputReport) -> Iterator[Piece]:
    document: list[str] = []
    size, continues = 0, False
    for line in lines:
        if boundary == "heading" and heading.match(line):
            if document:
                yield Piece(document, continues)
            document, size, continues = [], 0, False
            continue
        if _ANY_HEADING.match(line):
            continue  # a section heading is not a sentence of the text
        text = line.strip()
        if not text:
            if boundary == "blank" and document:
                yield Piece(document, continues)
                document, size, continues = [], 0, False
            continue
        document.append(text)
        size += len(text)
        if boundary == "file" and size >= RAW_PIECE_CHARS:
            yield Piece(document, continues)
            document, size, continues = [], 0, True
    if document:
        yield Piece(document, continues)


def _jsonl(lines: Iterable[str], name: str, text_field: str, report: InputReport) -> Iterator[Piece]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{name}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                            f"fix the line, or give the file as text with input_format=lines") from None
        if not isinstance(record, dict) or text_field not in record:
            fields = ", ".join(list(record)[:8]) if isinstance(record, dict) else type(record).__name__
            raise UserError(f"{name}:{number}: record has no {text_field!r} field (it has: {fields}); "
                            f"set text_field to the field holding the text")
        text = record[text_field]
        if not isinstance(text, str):
            raise UserError(f"{name}:{number}: field {text_field!r} is {type(text).__name__}, not text; "
                            f"set text_field to the field holding the text")
        paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
        if paragraphs:
            yield Piece(paragraphs, False)
        else:
            report.empty_documents += 1


def needs_splitting(fmt: str) -> bool:
    """Whether a format's texts are paragraphs to split into sentences (else they are sentences)."""
    return fmt != "lines"
