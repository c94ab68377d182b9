"""build-corpus end to end: input formats, example structure, determinism, the reader, errors."""

from __future__ import annotations

import json
import pickle
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bertcli import artifacts
from conftest import cli
from bertcli.config import BuildCorpusConfig
from bertcli.data.inputs import InputReport, ReadSettings, read_documents
from bertcli.data.sentences import split_sentences
from bertcli.data.shards import CorpusReader, corpus_splits
from bertcli.errors import UserError
from bertcli.stages import build_corpus
from bertcli.tokenizer import load_tokenizer

GUTENBERG = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "gutenberg"
WORDS = ("the statement value class function object list name module expression loop error code "
         "first second other new each only when which after before while returns defines calls "
         "evaluates raises contains holds").split()




def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
    return " ".join(words).capitalize() + "."


def make_documents(seed: int, count: int, sentences=(8, 30)) -> list[list[str]]:
    rng = random.Random(seed)
    return [[sentence(rng) for _ in range(rng.randint(*sentences))] for _ in range(count)]


def write_lines(path: Path, documents: list[list[str]]) -> Path:
    path.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    return path


def write_book(path: Path, paragraphs: list[list[str]], title: str) -> Path:
    """A Project Gutenberg-like file: BOM, CRLF, licence header/footer, paragraphs wrapped at 70."""
    body = "\n\n".join(textwrap.fill(" ".join(p), 70) for p in paragraphs)
    text = (f"The Project Gutenberg eBook of {title}\n\nLicence words here.\n\n"
            f"*** START OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n\n{body}\n\n\n"
            f"*** END OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\n\nMore licence words.\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    return path


def config(inputs, tokenizer, out, **overrides) -> BuildCorpusConfig:
    settings = dict(max_seq_len=48, dupe_factor=3, seed=1, max_predictions_per_seq=8)
    settings.update(overrides)
    return BuildCorpusConfig(input=[str(p) for p in inputs], tokenizer=str(tokenizer), out=str(out), **settings)


def shard_hashes(folder: Path) -> dict:
    manifest = artifacts.read_manifest(folder)
    return {name: [shard["sha256"] for shard in split["shards"]] for name, split in manifest["splits"].items()}


def token_stream(tokenizer, documents: list[list[str]]) -> list[np.ndarray]:
    return [np.concatenate([np.array(ids, dtype=np.int64) for ids in tokenizer.encode_batch(doc)])
            for doc in documents]


def contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    text, pattern = haystack.astype("<i4").tobytes(), np.asarray(needle).astype("<i4").tobytes()
    at = text.find(pattern)
    while at != -1 and at % 4:
        at = text.find(pattern, at + 1)
    return at != -1


def unmasked(example: dict) -> np.ndarray:
    ids = np.array(example["input_ids"])
    ids[example["mlm_positions"]] = example["mlm_labels"]
    return ids


@pytest.fixture(scope="module")
def documents() -> list[list[str]]:
    return make_documents(seed=0, count=30)


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory, documents) -> Path:
    return write_lines(tmp_path_factory.mktemp("lines") / "docs.txt", documents)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, lines_file, tokenizer_dir) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "corpus"
    build_corpus.run(config([lines_file], tokenizer_dir, out))
    return out


# ----------------------------------------------------------------------------- reading text


def test_sentence_splitter_handles_abbreviations_quotes_and_wrapping():
    text = ("Mr. Utterson met Dr. Jekyll in St. James's Street. \u201cWhat?\u201d he asked.\n"
            "\u201cNothing,\u201d said H. G. Wells, and left! Was it late? It was\nvery late. e.g. this")
    assert split_sentences(text) == [
        "Mr. Utterson met Dr. Jekyll in St. James's Street.",
        "\u201cWhat?\u201d he asked.",
        "\u201cNothing,\u201d said H. G. Wells, and left!",
        "Was it late?",
        "It was very late. e.g. this",
    ]


def read(path, **settings) -> tuple[list, InputReport]:
    report = InputReport(str(path))
    return list(read_documents(str(path), ReadSettings(**settings), report)), report


def test_formats_are_detected(tmp_path, documents):
    assert read(write_lines(tmp_path / "l.txt", documents))[1].format == "lines"
    assert read(write_book(tmp_path / "b.txt", documents[:5], "A Book"))[1].format == "raw"
    for name in ("1952-0.txt", "41-0.txt"):  # real Project Gutenberg books, when the data is beside the repo
        if (GUTENBERG / name).exists():
            assert read(GUTENBERG / name)[1].format == "raw"


def test_raw_file_is_one_document_of_its_sentences(tmp_path, documents):
    book = write_book(tmp_path / "b.txt", documents[:6], "Some Title")
    (piece,), report = read(book)
    assert [s for paragraph in piece.texts for s in split_sentences(paragraph)] == \
        [s for doc in documents[:6] for s in doc], "header, footer, BOM and CRLF are gone"
    assert [cut["part"] for cut in report.gutenberg_cuts] == ["header", "footer"]


def test_raw_books_build_one_document_per_file(tmp_path, monkeypatch, tokenizer_dir, documents):
    books = [write_book(tmp_path / f"book{i}.txt", documents[i * 5:i * 5 + 5], f"Book {i}") for i in range(3)]
    out = tmp_path / "corpus"
    build_corpus.run(config(books, tokenizer_dir, out))
    manifest = artifacts.read_manifest(out)
    for i, entry in enumerate(manifest["input_files"]):
        assert entry["format"] == "raw" and entry["documents"] == 1
        assert entry["sentences"] == sum(len(doc) for doc in documents[i * 5:i * 5 + 5])
    # a book tokenised in many pieces by two processes is still one document, the same bytes
    monkeypatch.setattr(build_corpus, "PIECE_CHARS", 300)
    pieces = tmp_path / "pieces"
    build_corpus.run(config(books, tokenizer_dir, pieces, workers=2))
    assert shard_hashes(pieces) == shard_hashes(out)
    forced = tmp_path / "forced"
    build_corpus.run(config(books, tokenizer_dir, forced, input_format="lines"))
    assert all(e["format"] == "lines" for e in artifacts.read_manifest(forced)["input_files"])


# ----------------------------------------------------------------------------- the folder


def test_corpus_folder_follows_the_contract(corpus, tokenizer_dir, lines_file):
    manifest = artifacts.require(corpus, "corpus")
    tokenizer = load_tokenizer(tokenizer_dir)
    copied = load_tokenizer(corpus / "tokenizer")
    assert manifest["tokenizer_fingerprint"] == tokenizer.fingerprint() == copied.fingerprint()
    assert manifest["vocab_size"] == tokenizer.vocab_size and manifest["token_dtype"] == "uint16"
    assert manifest["max_seq_len"] == 48 and manifest["max_predictions_per_seq"] == 8
    assert manifest["inputs"][0]["sha256"] == artifacts.sha256_file(lines_file)
    assert manifest["input_files"][0]["format"] == "lines" and manifest["input_files"][0]["documents"] == 30
    assert (corpus / artifacts.CONFIG).is_file()
    assert corpus_splits(corpus) == ["train"]
    (shard,) = manifest["splits"]["train"]["shards"]
    for name, digest in shard["sha256"].items():
        assert artifacts.sha256_file(corpus / shard["path"] / name) == digest
    ids = np.load(corpus / shard["path"] / "input_ids.npy", mmap_mode="r")
    assert ids.dtype == np.uint16
    stats = manifest["statistics"]
    assert stats["examples"] == shard["examples"] == manifest["splits"]["train"]["examples"]
    assert stats["documents"] == 30
    assert stats["sentences"] == sum(1 for line in lines_file.read_text().splitlines() if line)
    assert sum(stats["replacements"].values()) == stats["masked"]
    assert 0.3 < stats["nsp_random_share"] < 0.7


def test_examples_are_cls_a_sep_b_sep_with_sound_masks(corpus, tokenizer_dir, documents):
    tokenizer = load_tokenizer(tokenizer_dir)
    streams = token_stream(tokenizer, documents)
    reader = CorpusReader(corpus)
    doc_ids = np.load(corpus / "train" / "shard-00000" / "document_ids.npy")
    follows = randoms = truncated = 0
    for i in range(len(reader)):
        example = reader.example(i)
        ids, types = np.array(example["input_ids"]), np.array(example["token_type_ids"])
        n, a_len = len(ids), int(np.argmax(types)) - 2
        assert n <= 48 and len(types) == n
        assert ids[0] == tokenizer.cls_id and ids[a_len + 1] == ids[-1] == tokenizer.sep_id
        assert np.sum(ids == tokenizer.cls_id) == 1 and np.sum(ids == tokenizer.sep_id) == 2
        assert types[:a_len + 2].sum() == 0 and types[a_len + 2:].all()
        positions = example["mlm_positions"]
        assert 1 <= len(positions) <= 8 and not {0, a_len + 1, n - 1} & set(positions)
        assert not set(example["mlm_labels"]) & tokenizer.special_ids
        original = unmasked(example)
        a, b = original[1:a_len + 1], original[a_len + 2:-1]
        d, e = doc_ids[i]
        assert contains(streams[d], a) and contains(streams[e], b)
        if example["next_sentence_label"] == 0:
            follows += 1
            assert d == e
            if n < 48:  # not truncated, so B is exactly A's continuation
                assert contains(streams[d], np.concatenate([a, b]))
            else:
                truncated += 1
        else:
            randoms += 1
            assert d != e
    assert follows and randoms and truncated


def test_reader_batches_are_padded_int64(corpus):
    reader = CorpusReader(corpus)
    assert (reader.vocab_size, reader.max_seq_len, reader.max_predictions, reader.pad_id) == (600, 48, 8, 0)
    assert len(reader) == artifacts.read_manifest(corpus)["splits"]["train"]["examples"]
    indices = [3, 0, len(reader) - 1, 7]
    batch = reader.batch(indices)
    examples = [reader.example(i) for i in indices]
    T = max(len(e["input_ids"]) for e in examples)
    P = max(len(e["mlm_positions"]) for e in examples)
    shapes = {"input_ids": (4, T), "token_type_ids": (4, T), "attention_mask": (4, T),
              "mlm_positions": (4, P), "mlm_labels": (4, P), "next_sentence_label": (4,)}
    assert {k: v.shape for k, v in batch.items()} == shapes
    assert all(v.dtype == np.int64 for v in batch.values())
    for r, example in enumerate(examples):
        n, k = len(example["input_ids"]), len(example["mlm_positions"])
        assert batch["input_ids"][r, :n].tolist() == example["input_ids"]
        assert (batch["input_ids"][r, n:] == reader.pad_id).all()
        assert batch["token_type_ids"][r, :n].tolist() == example["token_type_ids"]
        assert (batch["token_type_ids"][r, n:] == 0).all()
        assert batch["attention_mask"][r].tolist() == [1] * n + [0] * (T - n)
        assert batch["mlm_positions"][r].tolist() == example["mlm_positions"] + [0] * (P - k)
        assert batch["mlm_labels"][r].tolist() == example["mlm_labels"] + [-100] * (P - k)
        assert batch["next_sentence_label"][r] == example["next_sentence_label"]
    assert pickle.loads(pickle.dumps(reader)).example(3) == reader.example(3)  # DataLoader workers
    with pytest.raises(IndexError):
        reader.example(len(reader))
    with pytest.raises(UserError, match="no 'eval' split; this corpus has: train"):
        CorpusReader(corpus, "eval")


# ----------------------------------------------------------------------------- determinism and splits


def test_output_depends_on_the_seed_and_not_on_workers(tmp_path, monkeypatch, corpus, lines_file, tokenizer_dir):
    again = tmp_path / "again"
    build_corpus.run(config([lines_file], tokenizer_dir, again))
    assert shard_hashes(again) == shard_hashes(corpus)
    # many small units of work, spread over two processes: still the same bytes
    monkeypatch.setattr(build_corpus, "PIECE_CHARS", 2000)
    monkeypatch.setattr(build_corpus, "JOB_TOKENS", 500)
    parallel = tmp_path / "parallel"
    assert cli("build-corpus", "--input", lines_file, "--tokenizer", tokenizer_dir, "--out", parallel,
               "--max-seq-len", 48, "--dupe-factor", 3, "--seed", 1, "--set", "max_predictions_per_seq=8",
               "--workers", 2) == 0
    assert shard_hashes(parallel) == shard_hashes(corpus)
    other = tmp_path / "other"
    build_corpus.run(config([lines_file], tokenizer_dir, other, seed=2))
    assert shard_hashes(other) != shard_hashes(corpus)


def test_eval_split_holds_out_whole_documents(tmp_path, lines_file, tokenizer_dir, documents):
    out = tmp_path / "corpus"
    build_corpus.run(config([lines_file], tokenizer_dir, out, eval_fraction=0.2, shard_size=100))
    manifest = artifacts.read_manifest(out)
    assert corpus_splits(out) == ["train", "eval"]
    assert manifest["splits"]["eval"]["statistics"]["documents"] == 6
    assert manifest["splits"]["train"]["statistics"]["documents"] == 24
    assert len(manifest["splits"]["train"]["shards"]) > 1
    streams = token_stream(load_tokenizer(tokenizer_dir), documents)
    sources = {}
    for split in ("train", "eval"):
        reader = CorpusReader(out, split)
        assert len(reader) == sum(s["examples"] for s in manifest["splits"][split]["shards"])
        found = set()
        for i in range(len(reader)):
            example = reader.example(i)
            a_len = example["token_type_ids"].index(1) - 2
            a = unmasked(example)[1:a_len + 1]
            if len(a) >= 12:  # long enough to belong to one document only
                found |= {d for d, stream in enumerate(streams) if contains(stream, a)}
        sources[split] = found
    assert sources["train"] and sources["eval"] and not sources["train"] & sources["eval"]


# ----------------------------------------------------------------------------- errors


def one_line_error(capsys, *args) -> str:
    assert cli("build-corpus", *args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    # progress lines may come first; the error itself is the one last line, with no traceback
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


def test_errors_are_one_line_and_leave_nothing_behind(tmp_path, capsys, lines_file, tokenizer_dir, corpus, documents):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    single = write_lines(tmp_path / "single.txt", documents[:1])
    few = write_lines(tmp_path / "few.txt", documents[:3])
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    out = tmp_path / "out"
    base = ["--tokenizer", tokenizer_dir, "--out", out]
    cases = [
        (["--input", tmp_path / "missing.txt", *base], "file not found"),
        (["--input", empty, *base], "is empty"),
        (["--input", binary, *base], "looks binary"),
        (["--input", single, *base], "corpus too small"),
        (["--input", few, *base, "--set", "eval_fraction=0.5"], "eval_fraction=0.5"),
        (["--input", lines_file, "--tokenizer", tmp_path / "nope", "--out", out], "expected a tokenizer folder"),
        (["--input", lines_file, "--tokenizer", corpus, "--out", out], "is a corpus folder, expected a tokenizer"),
        (["--input", lines_file, "--tokenizer", tokenizer_dir, "--out", a_file], "is a file"),
        (["--input", lines_file, "--tokenizer", tokenizer_dir, "--out", foreign], "not a bertcli folder"),
        (["--input", lines_file, "--tokenizer", tokenizer_dir, "--out", tokenizer_dir],
         "may only replace a corpus folder"),
        (["--tokenizer", tokenizer_dir, "--out", out], "no input given"),
    ]
    for args, message in cases:
        assert message in one_line_error(capsys, *args)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert (foreign / "notes.txt").read_text() == "mine"


def test_failed_build_keeps_the_old_corpus(tmp_path, monkeypatch, lines_file, tokenizer_dir):
    out = tmp_path / "corpus"
    build_corpus.run(config([lines_file], tokenizer_dir, out))
    before = json.loads((out / "manifest.json").read_text())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bertcli.data.shards.ShardFiles.append", broken)
    with pytest.raises(OSError):
        build_corpus.run(config([lines_file], tokenizer_dir, out, seed=5))
    assert json.loads((out / "manifest.json").read_text()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]


def test_shard_files_write_what_np_save_of_all_rows_writes(tmp_path):
    # a shard is appended to a few thousand examples at a time; its files must be np.save's bytes of
    # the examples laid end to end, and its manifest entry must count them all
    from bertcli.data.examples import Examples
    from bertcli.data.shards import SHARD_FILES, ShardFiles

    rng = np.random.default_rng(0)

    def examples(n):
        lengths = rng.integers(5, 40, n).astype(np.int32)
        counts = rng.integers(0, 4, n).astype(np.int32)
        return Examples(rng.integers(0, 900, int(lengths.sum())).astype(np.uint16), lengths,
                        (lengths // 3).astype(np.int32), rng.integers(0, 5, int(counts.sum())).astype(np.int32),
                        rng.integers(0, 900, int(counts.sum())).astype(np.uint16), counts,
                        rng.integers(0, 2, n).astype(np.uint8), rng.integers(0, 9, (n, 2)).astype(np.int32),
                        np.zeros(3, np.int64))

    parts = [examples(7), examples(0), examples(12)]
    shard = ShardFiles(tmp_path, "train/shard-00000", max_seq_len=64)
    for part in parts:
        shard.append(part)
    entry = shard.close()
    whole = Examples.concat(parts)
    expected = {"input_ids": whole.input_ids, "offsets": np.r_[0, np.cumsum(whole.lengths)].astype(np.int64),
                "a_lens": whole.a_lens.astype(np.uint16), "mlm_positions": whole.mlm_positions.astype(np.uint16),
                "mlm_labels": whole.mlm_labels, "mlm_offsets": np.r_[0, np.cumsum(whole.mlm_counts)].astype(np.int64),
                "next_sentence_labels": whole.next_sentence_labels, "document_ids": whole.document_ids}
    for key in SHARD_FILES:
        np.save(tmp_path / f"{key}.npy", expected[key])
        assert (tmp_path / "train/shard-00000" / f"{key}.npy").read_bytes() == (tmp_path / f"{key}.npy").read_bytes(), key
    assert sorted(p.name for p in (tmp_path / "train/shard-00000").iterdir()) == sorted(f"{k}.npy" for k in SHARD_FILES)
    assert entry["examples"] == 19 and entry["tokens"] == int(whole.lengths.sum()) and len(entry["sha256"]) == 8
