"""build-corpus at scale: input formats, compression, stdin, bad input, warnings, workers, sharded builds."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bertcli import artifacts
from bertcli.data.inputs import InputReport, ReadSettings, read_documents
from bertcli.data.shards import CorpusReader
from bertcli.data.workers import Workers
from bertcli.stages import build_corpus, merge_corpus
from conftest import cli, shared_data
from test_build_corpus import config, make_documents, shard_hashes, write_book, write_lines

ROOT = Path(__file__).resolve().parents[1]


def read(path, **settings):
    report = InputReport(str(path))
    return list(read_documents(str(path), ReadSettings(**settings), report)), report


def example_set(folder: Path, split: str = "train") -> list[tuple]:
    reader = CorpusReader(folder, split)
    return sorted((tuple(e["input_ids"]), tuple(e["mlm_positions"]), e.get("next_sentence_label"))
                  for e in map(reader.example, range(len(reader))))


def error_line(capsys, *args) -> str:
    assert cli("build-corpus", *args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def documents() -> list[list[str]]:
    return make_documents(seed=3, count=24)


def wiki_text(documents) -> str:
    """WikiText's shape: ` = Title = ` headings, ` = = Section = = `, a paragraph per line, blank lines."""
    out = [""]
    for d, doc in enumerate(documents):
        out += [f" = Article {d} = ", "", f" {' '.join(doc[:len(doc) // 2])} ", "", " = = Part = = ", "",
                f" {' '.join(doc[len(doc) // 2:])} ", ""]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- formats


def test_paragraph_per_line_text_with_headings_is_split_into_sentences(tmp_path, documents, tokenizer_dir, capsys):
    path = tmp_path / "wiki.txt"
    path.write_text(wiki_text(documents), encoding="utf-8")
    pieces, report = read(path)
    assert (report.format, report.boundary) == ("paragraphs", "heading")
    assert len(pieces) == len(documents) and all(len(p.texts) == 2 for p in pieces)  # section headings dropped
    out = tmp_path / "corpus"
    build_corpus.run(config([path], tokenizer_dir, out))
    manifest = artifacts.read_manifest(out)
    entry = manifest["input_files"][0]
    assert entry["format"] == "paragraphs" and entry["documents"] == len(documents)
    assert entry["sentences"] == sum(map(len, documents))  # every paragraph split back into its sentences
    assert 0.35 < manifest["statistics"]["nsp_random_share"] < 0.65
    assert manifest["warnings"] == []
    # the same file forced to one sentence per line: documents of one segment, and a warning says so
    forced = tmp_path / "forced"
    build_corpus.run(config([path], tokenizer_dir, forced, input_format="lines"))
    warnings = artifacts.read_manifest(forced)["warnings"]
    assert any(w.startswith("NSP labels are") and "input_format=paragraphs" in w for w in warnings), warnings
    assert any("have a single segment" in w for w in warnings)
    assert "warning: NSP labels are" in capsys.readouterr().err
    # packed MLM sequences need no pairs: the same one-segment documents are fine there
    packed = tmp_path / "packed"
    build_corpus.run(config([path], tokenizer_dir, packed, input_format="lines", objective="mlm"))
    assert artifacts.read_manifest(packed)["warnings"] == []


def test_wikitext_auto_detects_paragraphs_and_gets_balanced_nsp(tmp_path, tokenizer_dir):
    valid = shared_data("corpus/wikitext2/valid.txt")
    out = tmp_path / "wiki"
    # (the test tokenizer's 600 pieces make long sentences; 256 tokens hold several of them)
    build_corpus.run(config([valid], tokenizer_dir, out, dupe_factor=1, max_seq_len=256, workers=1))
    manifest = artifacts.read_manifest(out)
    assert manifest["input_files"][0]["format"] == "paragraphs"
    assert manifest["input_files"][0]["documents"] == 60  # its ` = Title = ` articles
    assert 0.45 < manifest["statistics"]["nsp_random_share"] < 0.6  # was 0.94 read a line a document
    assert not any(w.startswith("NSP") for w in manifest["warnings"])


def test_every_book_of_a_multi_book_file_is_cut_and_reported(tmp_path, documents, tokenizer_dir, capsys):
    books = [write_book(tmp_path / f"b{i}.txt", documents[i * 4:i * 4 + 4], f"Book {i}") for i in range(3)]
    joined = tmp_path / "joined.txt"
    text = b"".join(b.read_bytes() for b in books).replace(b"\xef\xbb\xbf", b"")
    joined.write_bytes(text.replace(b"*** END", b"   *** END", 1))  # one indented marker
    (piece,), report = read(joined)
    assert [c["part"] for c in report.gutenberg_cuts] == ["header", "footer and header", "footer and header",
                                                         "footer"]
    assert all(c["removed_chars"] > 0 for c in report.gutenberg_cuts)
    assert "Licence words" not in " ".join(piece.texts) and "PROJECT GUTENBERG" not in " ".join(piece.texts)
    out = tmp_path / "corpus"
    build_corpus.run(config([joined, books[0]], tokenizer_dir, out))
    entry = artifacts.read_manifest(out)["input_files"][0]
    assert entry["sentences"] == sum(len(d) for d in documents[:12])  # all three books' text, nothing else
    assert len(entry["gutenberg_cuts"]) == 4
    assert "cut Project Gutenberg header (lines 1-" in capsys.readouterr().err


def test_jsonl_gzip_zstd_and_stdin(tmp_path, documents, tokenizer_dir, monkeypatch):
    records = [json.dumps({"id": i, "body": "\n".join(doc)}) for i, doc in enumerate(documents)]
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(records) + "\n" + json.dumps({"id": 99, "body": "  "}) + "\n")
    plain = tmp_path / "plain"
    build_corpus.run(config([jsonl], tokenizer_dir, plain, text_field="body"))
    entry = artifacts.read_manifest(plain)["input_files"][0]
    assert (entry["format"], entry["documents"], entry["empty_documents"]) == ("jsonl", len(documents), 1)
    gz = tmp_path / "docs.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    build_corpus.run(config([gz], tokenizer_dir, tmp_path / "gz", text_field="body"))
    assert artifacts.read_manifest(tmp_path / "gz")["input_files"][0]["compression"] == "gzip"
    assert shard_hashes(tmp_path / "gz") == shard_hashes(plain)
    zstandard = pytest.importorskip("zstandard")
    zst = tmp_path / "docs.zst"  # no telling extension: the format is found from the content
    zst.write_bytes(zstandard.ZstdCompressor().compress(jsonl.read_bytes()))
    build_corpus.run(config([zst], tokenizer_dir, tmp_path / "zst", text_field="body"))
    assert shard_hashes(tmp_path / "zst") == shard_hashes(plain)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gz.read_bytes())))
    build_corpus.run(config(["-"], tokenizer_dir, tmp_path / "stdin", text_field="body"))
    assert shard_hashes(tmp_path / "stdin") == shard_hashes(plain)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_names_file_and_line(tmp_path, capsys, documents, tokenizer_dir):
    base = ["--tokenizer", tokenizer_dir, "--out", tmp_path / "out"]
    latin = tmp_path / "latin.txt"
    write_lines(latin, documents)
    latin.write_bytes(latin.read_bytes().replace(b"The", b"Th\xe9", 1))
    first = latin.read_bytes()[:latin.read_bytes().index(b"\xe9")].count(b"\n") + 1
    assert f"latin.txt:{first}: not valid UTF-8" in error_line(capsys, "--input", latin, *base)
    assert cli("build-corpus", "--input", latin, *base, "--set", "invalid_utf8=skip") == 0
    assert artifacts.read_manifest(tmp_path / "out")["input_files"][0]["skipped_invalid_utf8_lines"] == 1
    assert "skipped 1 lines of invalid UTF-8" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "A b c. D e f."}\n{"text": "x" \n')
    assert "broken.jsonl:2: not valid JSON" in error_line(capsys, "--input", broken, *base, "--input-format", "jsonl")
    fieldless = tmp_path / "fieldless.jsonl"
    fieldless.write_text('{"text": "A b c."}\n{"text": "D e."}\n{"body": "no text"}\n')
    message = error_line(capsys, "--input", fieldless, *base)
    assert "fieldless.jsonl:3: record has no 'text' field (it has: body); set text_field" in message
    truncated = tmp_path / "cut.txt.gz"
    truncated.write_bytes(gzip.compress(write_lines(tmp_path / "full.txt", documents).read_bytes())[:-40])
    assert "compressed input is damaged or cut short" in error_line(capsys, "--input", truncated, *base)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": ""}\n')
    assert "empty.jsonl: is empty" in error_line(capsys, "--input", empty, *base)
    assert "heading_pattern" in error_line(capsys, "--input", latin, *base, "--set", "heading_pattern=[")


def test_killed_build_leaves_no_corpus(tmp_path, documents, tokenizer_dir):
    big = write_lines(tmp_path / "big.txt", documents * 40)
    out = tmp_path / "corpus"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "bertcli", "build-corpus", "--input", str(big), "--tokenizer",
                                str(tokenizer_dir), "--out", str(out), "--dupe-factor", "50", "--workers", "1"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not any(p.name.startswith(".corpus.tmp") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "the build ended before it could be killed; make it bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()  # only a hidden staging folder remains, never a folder that looks like a corpus
    with pytest.raises(Exception, match="not found|expected a corpus"):
        CorpusReader(out)


# ----------------------------------------------------------------------------- scale


def test_blocks_workers_and_sharded_builds_agree(tmp_path, monkeypatch, documents, tokenizer_dir):
    lines = write_lines(tmp_path / "docs.txt", make_documents(seed=9, count=60))
    monkeypatch.setattr(build_corpus, "PIECE_CHARS", 1500)  # many tasks and about four blocks
    settings = dict(block_mb=0.006, shard_size=150)
    one = tmp_path / "one"
    build_corpus.run(config([lines], tokenizer_dir, one, workers=1, **settings))
    two = tmp_path / "two"
    build_corpus.run(config([lines], tokenizer_dir, two, workers=2, **settings))
    hashes = shard_hashes(one)
    assert hashes == shard_hashes(two) and len(hashes["train"]) > 2  # identical bytes, sha256 per file
    parts = []
    for index in range(2):
        part = tmp_path / f"part{index}"
        assert cli("build-corpus", "--input", lines, "--tokenizer", tokenizer_dir, "--out", part,
                   "--max-seq-len", 48, "--dupe-factor", 3, "--seed", 1, "--set", "max_predictions_per_seq=8",
                   "--set", "block_mb=0.006", "--shard-size", 150, "--shard-index", index, "--num-shards", 2) == 0
        parts.append(part)
    halves = [artifacts.read_manifest(p)["splits"]["train"]["examples"] for p in parts]
    assert all(halves)
    merged = tmp_path / "merged"
    assert cli("merge-corpus", merged, parts[1], parts[0]) == 0
    manifest = artifacts.read_manifest(merged)
    assert manifest["splits"]["train"]["examples"] == sum(halves) == len(CorpusReader(merged))
    assert example_set(merged) == example_set(one)  # the same examples as one build
    for key in ("documents", "examples", "masked", "random_next"):
        assert manifest["statistics"][key] == artifacts.read_manifest(one)["statistics"][key]
    with pytest.raises(Exception, match="missing \\[1\\]"):
        merge_corpus.run([parts[0]], tmp_path / "incomplete")


def test_spooled_workers_return_results_in_order_and_leave_no_files(tmp_path):
    # tasks and results pass through files in the spool folder (the pool's pipes carry their names)
    spool = tmp_path / "spool"
    arrays = [np.arange(n, dtype=np.int32) * 3 for n in (5, 200_000, 0, 7)]
    with Workers(2, int, (), spool=spool) as workers:
        assert [a.tolist() for a in workers.map(np.flip, arrays)] == [a[::-1].tolist() for a in arrays]
        results = workers.submit(np.sum, arrays)
        assert spool.is_dir()
        assert results() == [a.sum() for a in arrays]
        assert sorted(spool.iterdir()) == []  # every task and result file taken back
    assert not spool.exists()


def test_rank_and_world_size_pick_the_part(tmp_path, monkeypatch, tokenizer_dir):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    cfg = config([tmp_path / "x.txt"], tokenizer_dir, tmp_path / "o")
    assert build_corpus.sharding(cfg) == (1, 3)
    assert build_corpus.sharding(config([], tokenizer_dir, tmp_path / "o", shard_index=0, num_shards=1)) == (0, 1)


# ----------------------------------------------------------------------------- inspect and tokenize


def test_inspect_json_exposes_the_statistics_and_warnings(tmp_path, documents, tokenizer_dir, capsys):
    path = tmp_path / "one-per-doc.txt"
    path.write_text("\n\n".join(" ".join(doc[:2]) for doc in documents) + "\n")  # a sentence pair per line
    out = tmp_path / "corpus"
    build_corpus.run(config([path], tokenizer_dir, out, input_format="lines"))
    capsys.readouterr()
    assert cli("inspect", out, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    stats = info["statistics"]
    manifest = artifacts.read_manifest(out)
    assert stats["single_segment_documents"] == len(documents) and stats["single_segment_share"] == 1.0
    assert sum(stats["length_histogram"]["counts"]) == stats["examples"]
    assert stats["length_histogram"]["edges"][0] == 0 and stats["length_histogram"]["edges"][-1] == 48
    expected_padding = 1 - stats["tokens"] / (stats["examples"] * 48)
    assert abs(stats["padding_share"] - expected_padding) < 1e-12 and 0 < stats["padding_share"] < 0.5
    assert 0.1 < stats["masked_share"] < 0.25 and abs(sum(stats["replacement_shares"].values()) - 1) < 1e-9
    assert stats["nsp_random_share"] == 1.0  # one-segment documents only ever get a random B
    assert info["warnings"] == manifest["warnings"] and len(info["warnings"]) == 2  # NSP, one segment
    assert "length_counts" not in stats
    assert cli("inspect", out) == 0
    shown = capsys.readouterr().out
    assert "statistics.length_histogram[46-48]" in shown and "warning: NSP labels are 100% random-next" in shown


def test_tokenize_train_streams_any_format_and_encode_keeps_lines(tmp_path, documents, capsys, monkeypatch):
    records = tmp_path / "docs.jsonl.gz"
    records.write_bytes(gzip.compress("".join(json.dumps({"text": "\n".join(doc)}) + "\n"
                                              for doc in documents).encode()))
    tok = tmp_path / "tok"
    assert cli("tokenize", "train", "--input", records, "--out", tok, "--vocab-size", 80) == 0
    assert f"trained on {sum(map(len, documents)):,} lines" in capsys.readouterr().err  # a line per record line
    assert cli("tokenize", "train", "--input", records, "--out", tmp_path / "big", "--vocab-size", 30000) == 2
    assert "lower --vocab-size or give more text" in capsys.readouterr().err
    lines = ["Each value holds.", "", "  ", "The second loop\r", "é ü"]
    text = tmp_path / "lines.txt"
    text.write_bytes(("\n".join(lines) + "\n").encode())
    assert cli("tokenize", "encode", "--tokenizer", tok, text) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == len(lines) + 1 and out[1] == "" and out[-1] == ""
    from bertcli.tokenizer import load_tokenizer

    expected = load_tokenizer(tok).encode_batch(["Each value holds.", "", "  ", "The second loop", "é ü"])
    assert [[int(i) for i in line.split()] for line in out[:-1]] == expected
    monkeypatch.setattr("bertcli.data.decoding.BATCH_BYTES", 7)  # blocks end mid-line: lines are still whole
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.read_bytes())))
    assert cli("tokenize", "encode", "--tokenizer", tok, "-") == 0
    assert capsys.readouterr().out.split("\n") == out
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    assert cli("tokenize", "encode", "--tokenizer", tok, bad) == 2
    assert "bad.txt:3: not valid UTF-8" in capsys.readouterr().err


def test_single_sentence_documents_and_overlong_lines_build(tmp_path, documents, tokenizer_dir):
    long_line = " ".join(["value"] * 400) + "."  # far longer than max_seq_len
    docs = [documents[0], [long_line], ["Only one sentence here."], [long_line, "Then a short one."], documents[1]]
    path = write_lines(tmp_path / "odd.txt", docs)
    out = tmp_path / "corpus"
    build_corpus.run(config([path], tokenizer_dir, out))
    reader = CorpusReader(out)
    lengths = [len(reader.example(i)["input_ids"]) for i in range(len(reader))]
    assert max(lengths) == 48 and min(lengths) >= 5
    entry = artifacts.read_manifest(out)["input_files"][0]
    assert (entry["documents"], entry["sentences"]) == (5, sum(map(len, docs)))


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_ends_lf_crlf_and_lone_cr_read_alike(tmp_path, ending):
    lines = ["The first sentence.", "The second one.", "", "A second document.", "", "", "Its end."]
    path = tmp_path / "doc.txt"
    path.write_bytes(ending.join(lines).encode("utf-8") + ending.encode())
    pieces, report = read(path, input_format="lines")
    assert [piece.texts for piece in pieces] == [lines[:2], lines[3:4], lines[6:]]
    assert report.lines == (len(lines) if ending != "\r" else 1)  # lines are counted by their LF


def test_mixed_line_ends_in_one_block(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"one.\r\ntwo.\rthree.\r\r\nfour.\n\nfive.\n")
    pieces, _ = read(path, input_format="lines")
    assert [piece.texts for piece in pieces] == [["one.", "two.", "three.", "four."], ["five."]]
