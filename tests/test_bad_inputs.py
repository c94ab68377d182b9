"""The bad-input catalogue: what users get wrong, for every subcommand, in one table.

Each case runs bertcli in-process and asserts: the exit code, exactly one line on stderr that starts
with "error:" and names what is wrong (the fragments: a file, line or key, and the fix), no traceback,
nothing on stdout, and no existing folder changed (the fixtures and the case's own files are hashed
before and after). The fixtures (two tokenizers, two corpora, a pretraining run, a fine-tuning run)
are tiny and built once per module. Interrupted runs (SIGINT, SIGTERM, SIGKILL) run in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conftest import ROOT, TINY_WORLD_MODEL as TINY, cli

QUIET = ["--set", "runtime.progress=none"]


@pytest.fixture
def fx(tiny_world):
    return tiny_world


def tree_hash(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            digest.update(str(path.relative_to(folder)).encode())
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- case helpers


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def damaged_weights(fx, tmp) -> Path:
    ckpt = copy(fx.run / "final", tmp / "ckpt")
    data = bytearray((ckpt / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ckpt / "model.safetensors").write_bytes(bytes(data))
    return ckpt


def truncated_weights(fx, tmp) -> Path:
    ckpt = copy(fx.run / "final", tmp / "ckpt")
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) // 3])
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest.pop("weights_sha256")  # so that the reader, not the checksum, meets the truncation
    (ckpt / "manifest.json").write_text(json.dumps(manifest))
    return ckpt


def manifest_edit(folder_of: Callable, text: str):
    def make(fx, tmp):
        folder = copy(folder_of(fx), tmp / "folder")
        (folder / "manifest.json").write_text(text)
        return folder
    return make


def killed_finetune(fx, tmp) -> Path:
    """What kill -9 leaves of a fine-tune: a staging folder with a manifest and best/ already."""
    staging = copy(fx.ft, tmp / ".ft.tmp-abc123")
    (staging / ".bertcli-staging").write_text("999999999\n")  # a pid that no process has
    return staging


def long_name(tmp) -> Path:
    return tmp / ("x" * 300)


def under_file(tmp) -> Path:
    return write(tmp / "afile", "text") / "out"


def read_only_place(tmp) -> Path:
    if os.geteuid() == 0:  # root writes through permissions; /sys refuses even root
        return Path("/sys/bertcli-catalogue/out")
    folder = tmp / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "out"


@dataclass
class Case:
    id: str
    args: Callable  # (fx, tmp) -> list of arguments
    fragments: tuple  # each must appear in the error line
    code: int = 2
    stdin: str | None = None


def C(id, args, *fragments, code=2, stdin=None):
    return Case(id, args, fragments, code, stdin)


def F(id, args, *fragments):
    """A finetune case: the tiny model has 64 positions, so examples are cut to 32 tokens unless the
    case sets its own length."""
    def with_length(fx, t):
        given = args(fx, t)
        return given if "--max-seq-len" in given else [*given, "--max-seq-len", 32]
    return Case(id, with_length, fragments)


CASES = [
    # ---------------------------------------------------------------- tokenize train
    C("tokenize-train/missing-input", lambda fx, t: ["tokenize", "train", "--input", t / "nope.txt", "--out", t / "o"],
      "nope.txt", "not found"),
    C("tokenize-train/empty-input", lambda fx, t: ["tokenize", "train", "--input", write(t / "e.txt", ""), "--out", t / "o"],
      "e.txt", "no text"),
    C("tokenize-train/binary-input", lambda fx, t: ["tokenize", "train", "--input", write(t / "b.bin", b"\x00\x01\x02"),
                                                    "--out", t / "o"], "b.bin", "binary"),
    C("tokenize-train/latin1-input", lambda fx, t: ["tokenize", "train", "--input", write(t / "l.txt", "ok\ncaf\xe9".encode("latin-1")),
                                                    "--out", t / "o"], "l.txt:2", "UTF-8"),
    C("tokenize-train/folder-as-input", lambda fx, t: ["tokenize", "train", "--input", fx.tok, "--out", t / "o"],
      "is a folder"),
    C("tokenize-train/out-is-input", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", fx.text],
      "is a file"),
    C("tokenize-train/out-is-corpus", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", fx.corpus],
      "is a corpus folder", "--out"),
    C("tokenize-train/vocab-zero", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", t / "o",
                                                  "--vocab-size", 0], "vocab_size", ">= 16"),
    C("tokenize-train/vocab-mistyped", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", t / "o",
                                                      "--set", "vocab_size=lots"], "vocab_size", "integer"),
    C("tokenize-train/set-without-equals", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", t / "o",
                                                          "--set", "vocab_size"], "--set", "section.key=value"),
    C("tokenize-train/unknown-key", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", t / "o",
                                                   "--set", "vocab_sise=100"], "vocab_sise", "did you mean"),
    C("tokenize-train/out-name-too-long", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", long_name(t)],
      "File name too long", "shorter"),
    C("tokenize-train/out-parent-is-file", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", under_file(t)],
      "afile", "is a file"),
    C("tokenize-train/out-read-only", lambda fx, t: ["tokenize", "train", "--input", fx.text, "--out", read_only_place(t)],
      "permi"),
    C("tokenize-train/input-name-too-long", lambda fx, t: ["tokenize", "train", "--input", long_name(t), "--out", t / "o"],
      "File name too long"),
    # ---------------------------------------------------------------- tokenize encode / decode
    C("tokenize-encode/missing-tokenizer", lambda fx, t: ["tokenize", "encode", "--tokenizer", t / "none", fx.text],
      "none", "not found"),
    C("tokenize-encode/not-a-tokenizer", lambda fx, t: ["tokenize", "encode", "--tokenizer", write(t / "d" / "x", "").parent,
                                                        fx.text], "holds no tokenizer"),
    C("tokenize-encode/damaged-tokenizer", lambda fx, t: ["tokenize", "encode", "--tokenizer",
                                                          _damaged_tokenizer(fx, t), fx.text], "tokenizer"),
    C("tokenize-encode/missing-text", lambda fx, t: ["tokenize", "encode", "--tokenizer", fx.tok, t / "nope.txt"],
      "nope.txt", "not found"),
    C("tokenize-encode/binary-stdin", lambda fx, t: ["tokenize", "encode", "--tokenizer", fx.tok, "-"],
      "<stdin>:1", "binary", stdin="a\x00b\n"),
    C("tokenize-decode/not-ids", lambda fx, t: ["tokenize", "decode", "--tokenizer", fx.tok, write(t / "i.txt", "7 x\n5 6\n")],
      "i.txt:1", "token ids"),
    C("tokenize-decode/id-out-of-range", lambda fx, t: ["tokenize", "decode", "--tokenizer", fx.tok,
                                                        write(t / "i.txt", "5 99999\n")], "i.txt:1", "99999"),
    # ---------------------------------------------------------------- build-corpus
    C("build-corpus/missing-input", lambda fx, t: ["build-corpus", "--input", t / "nope.txt", "--tokenizer", fx.tok,
                                                   "--out", t / "c"], "nope.txt", "not found"),
    C("merge-corpus/not-a-corpus", lambda fx, t: ["merge-corpus", t / "m", fx.tok], "expected a corpus"),
    C("merge-corpus/repeated-part", lambda fx, t: ["merge-corpus", t / "m", fx.corpus, fx.corpus], "repeated [0]"),
    C("build-corpus/empty-input", lambda fx, t: ["build-corpus", "--input", write(t / "e.txt", "\n\n"), "--tokenizer", fx.tok,
                                                 "--out", t / "c"], "e.txt"),
    C("build-corpus/binary-input", lambda fx, t: ["build-corpus", "--input", write(t / "b.bin", b"\x89PNG\x00\x00"),
                                                  "--tokenizer", fx.tok, "--out", t / "c"], "b.bin", "binary"),
    C("build-corpus/missing-tokenizer", lambda fx, t: ["build-corpus", "--input", fx.text, "--out", t / "c"],
      "--tokenizer"),
    C("build-corpus/tokenizer-is-empty-folder", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer",
                                                               write(t / "d" / "x", "").parent, "--out", t / "c"], "d"),
    C("build-corpus/out-is-tokenizer", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                      "--out", fx.tok], "is a tokenizer folder"),
    C("build-corpus/out-is-input-file", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                       "--out", fx.text], "is a file"),
    C("build-corpus/seq-len-zero", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                  "--out", t / "c", "--max-seq-len", 0], "max_seq_len", ">= 8"),
    C("build-corpus/dupe-negative", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                   "--out", t / "c", "--dupe-factor", -2], "dupe_factor", "> 0"),
    C("build-corpus/prob-mistyped", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                   "--out", t / "c", "--set", "masked_lm_prob=high"],
      "masked_lm_prob", "number"),
    C("build-corpus/recipe-invalid-yaml", lambda fx, t: ["build-corpus", write(t / "r.yaml", "max_seq_len: 64\n  bad: [\n"),
                                                         "--input", fx.text, "--tokenizer", fx.tok, "--out", t / "c"],
      "r.yaml:", "YAML"),
    C("build-corpus/recipe-unknown-key", lambda fx, t: ["build-corpus", write(t / "r.yaml", "max_seq_len: 64\ndupe_factr: 2\n"),
                                                        "--input", fx.text, "--tokenizer", fx.tok, "--out", t / "c"],
      "r.yaml:2", "dupe_factr", "did you mean"),
    C("build-corpus/out-parent-is-file", lambda fx, t: ["build-corpus", "--input", fx.text, "--tokenizer", fx.tok,
                                                        "--out", under_file(t)], "afile"),
    # ---------------------------------------------------------------- inspect
    C("inspect/missing", lambda fx, t: ["inspect", t / "nope"], "nope", "not found"),
    C("inspect/a-file", lambda fx, t: ["inspect", fx.text], "is a file"),
    C("inspect/no-manifest", lambda fx, t: ["inspect", write(t / "d" / "x", "").parent], "manifest.json", "not a bertcli"),
    C("inspect/manifest-not-json", lambda fx, t: ["inspect", manifest_edit(lambda fx: fx.corpus, "{not json")(fx, t)],
      "manifest.json", "not valid JSON"),
    C("inspect/manifest-without-kind", lambda fx, t: ["inspect", manifest_edit(lambda fx: fx.corpus, '{"format_version": 1}')(fx, t)],
      "manifest.json", "no 'kind'"),
    C("inspect/staging-folder", lambda fx, t: ["inspect", killed_finetune(fx, t)], ".ft.tmp-abc123", "unfinished"),
    C("inspect/dump-negative", lambda fx, t: ["inspect", fx.corpus, "--dump", -1], "--dump", ">= 1"),
    C("inspect/dump-of-tokenizer", lambda fx, t: ["inspect", fx.tok, "--dump", 2], "tokenizer folder", "build-corpus"),
    # ---------------------------------------------------------------- pretrain
    C("pretrain/no-corpus", lambda fx, t: ["pretrain", "--out", t / "r", *TINY], "--corpus"),
    C("pretrain/corpus-missing", lambda fx, t: ["pretrain", "--corpus", t / "nope", "--out", t / "r", *TINY], "nope", "not found"),
    C("pretrain/corpus-is-tokenizer", lambda fx, t: ["pretrain", "--corpus", fx.tok, "--out", t / "r", *TINY],
      "is a tokenizer folder", "build-corpus"),
    C("pretrain/eval-corpus-other-tokenizer", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                                             "--set", f"eval_corpus={fx.corpus2}"], "different tokenizer"),
    C("pretrain/init-from-other-tokenizer", lambda fx, t: ["pretrain", "--corpus", fx.corpus2, "--out", t / "r",
                                                           "--init-from", fx.run, *QUIET], "different tokenizer"),
    C("pretrain/batch-zero", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                            "--batch-size", 0], "train.batch_size", "> 0"),
    C("pretrain/lr-negative", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                             "--set", "optim.lr=-1"], "optim.lr", "> 0"),
    C("pretrain/steps-mistyped", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                                "--set", "train.max_steps=ten"], "train.max_steps", "integer"),
    C("pretrain/keep-last-negative", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                                    "--set", "train.keep_last=-1"], "train.keep_last", ">= 0"),
    C("pretrain/unknown-preset", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", "--preset", "tinyy"],
      "tinyy", "did you mean 'tiny'"),
    C("pretrain/unknown-key", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", "--set", "optim.lrr=1"],
      "optim.lrr", "did you mean 'optim.lr'"),
    C("pretrain/set-without-equals", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", "--set", "optim.lr"],
      "--set", "section.key=value"),
    C("pretrain/resume-missing-run", lambda fx, t: ["pretrain", "--out", t / "nothere", "--resume"],
      "nothere", "not found", "pretrain"),
    C("pretrain/resume-tokenizer-folder", lambda fx, t: ["pretrain", "--out", fx.tok, "--resume"],
      "is a tokenizer folder", "pretrain"),
    C("pretrain/resume-finished-run", lambda fx, t: ["pretrain", "--out", fx.run, "--resume", *QUIET],
      "already at step 4", "train.max_steps"),
    C("pretrain/out-is-file", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", fx.text, *TINY], "is a file"),
    C("pretrain/out-is-corpus", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", fx.corpus, *TINY],
      "is a corpus folder"),
    C("pretrain/out-holds-run", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", fx.run, *TINY],
      "holds a run already", "--resume"),
    C("pretrain/out-name-too-long", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", long_name(t), *TINY, *QUIET],
      "File name too long"),
    C("pretrain/out-parent-is-file", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", under_file(t), *TINY, *QUIET],
      "afile"),
    C("pretrain/recipe-binary", lambda fx, t: ["pretrain", write(t / "r.yaml", b"\x00\xff\xfe"), "--corpus", fx.corpus,
                                               "--out", t / "r"], "r.yaml", "not a text file"),
    C("pretrain/recipe-missing", lambda fx, t: ["pretrain", t / "nope.yaml", "--corpus", fx.corpus, "--out", t / "r"],
      "nope.yaml", "not found"),
    C("pretrain/init-from-damaged-weights", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r",
                                                           "--init-from", damaged_weights(fx, t), *QUIET],
      "model.safetensors", "checksum"),
    C("pretrain/seq-longer-than-positions", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                                           "--set", "model.max_position_embeddings=16"],
      "positions", "max_position_embeddings"),
    C("pretrain/tensorboard-mistyped", lambda fx, t: ["pretrain", "--corpus", fx.corpus, "--out", t / "r", *TINY,
                                                      "--set", "runtime.tensorboard=maybe"], "runtime.tensorboard", "true or false"),
    # ---------------------------------------------------------------- finetune
    F("finetune/init-missing", lambda fx, t: ["finetune", "--init", t / "nope", "--train", fx.train, "--dev", fx.dev,
                                              "--out", t / "f"], "nope", "not found"),
    F("finetune/init-is-corpus", lambda fx, t: ["finetune", "--init", fx.corpus, "--train", fx.train, "--dev", fx.dev,
                                                "--out", t / "f"], "not a checkpoint", "corpus"),
    F("finetune/init-damaged-weights", lambda fx, t: ["finetune", "--init", damaged_weights(fx, t), "--train", fx.train,
                                                      "--dev", fx.dev, "--out", t / "f", *QUIET], "checksum"),
    F("finetune/init-truncated-weights", lambda fx, t: ["finetune", "--init", truncated_weights(fx, t), "--train", fx.train,
                                                        "--dev", fx.dev, "--out", t / "f", *QUIET],
      "model.safetensors", "damaged"),
    F("finetune/init-manifest-not-json", lambda fx, t: ["finetune", "--init", manifest_edit(lambda fx: fx.run / "final", "[1,")(fx, t),
                                                        "--train", fx.train, "--dev", fx.dev, "--out", t / "f", *QUIET],
      "manifest.json", "not valid JSON"),
    F("finetune/init-staging-folder", lambda fx, t: ["finetune", "--init", killed_finetune(fx, t) / "best", "--train",
                                                     fx.train, "--dev", fx.dev, "--out", t / "f"], "unfinished"),
    F("finetune/train-missing", lambda fx, t: ["finetune", "--init", fx.run, "--train", t / "nope.tsv", "--dev", fx.dev,
                                               "--out", t / "f"], "nope.tsv", "not found"),
    F("finetune/train-empty", lambda fx, t: ["finetune", "--init", fx.run, "--train", write(t / "e.tsv", ""), "--dev",
                                             fx.dev, "--out", t / "f"], "e.tsv", "empty"),
    F("finetune/train-header-only", lambda fx, t: ["finetune", "--init", fx.run, "--train", write(t / "h.tsv", "sentence\tlabel\n"),
                                                   "--dev", fx.dev, "--out", t / "f"], "h.tsv", "no examples"),
    F("finetune/train-bad-tsv-row", lambda fx, t: ["finetune", "--init", fx.run, "--train",
                                                   write(t / "b.tsv", "sentence\tlabel\ngood\t1\nbad row\t0\textra\n"),
                                                   "--dev", fx.dev, "--out", t / "f"], "b.tsv:3", "columns"),
    F("finetune/train-bad-jsonl", lambda fx, t: ["finetune", "--init", fx.run, "--train",
                                                 write(t / "b.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n'),
                                                 "--dev", fx.dev, "--out", t / "f"], "b.jsonl:2", "JSON"),
    F("finetune/train-bad-csv", lambda fx, t: ["finetune", "--init", fx.run, "--train",
                                               write(t / "b.csv", 'sentence,label\n"a good one,1\n'),
                                               "--dev", fx.dev, "--out", t / "f"], "b.csv"),
    F("finetune/train-one-label", lambda fx, t: ["finetune", "--init", fx.run, "--train",
                                                 write(t / "one.tsv", "sentence\tlabel\na\t1\nb\t1\n"),
                                                 "--dev", fx.dev, "--out", t / "f"], "one.tsv", "one label"),
    F("finetune/train-no-label-column", lambda fx, t: ["finetune", "--init", fx.run, "--train",
                                                       write(t / "n.tsv", "sentence\tscore_x\na\t1\nb\t0\n"),
                                                       "--dev", fx.dev, "--out", t / "f"], "n.tsv", "label"),
    F("finetune/dev-unknown-label", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev",
                                                   write(t / "d.tsv", "sentence\tlabel\na\t0\nb\t7\n"), "--out", t / "f",
                                                   "--max-seq-len", 32, *QUIET], "d.tsv:3", "unknown label"),
    F("finetune/out-is-init-run", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                                 "--out", fx.run], "is a pretrain-run folder"),
    F("finetune/out-is-own-init", lambda fx, t: ["finetune", "--init", fx.ft, "--train", fx.train, "--dev", fx.dev,
                                                 "--out", fx.ft], "is the input", "separate"),
    F("finetune/out-is-train-file", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                                   "--out", fx.train], "is a file"),
    F("finetune/epochs-zero", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                             "--out", t / "f", "--epochs", 0], "train.epochs", "> 0"),
    F("finetune/batch-negative", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                                "--out", t / "f", "--batch-size", -4], "train.batch_size", "> 0"),
    F("finetune/lr-mistyped", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                             "--out", t / "f", "--set", "optim.lr=fast"], "optim.lr", "number"),
    F("finetune/seq-longer-than-model", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                                       "--out", t / "f", "--max-seq-len", 512], "max_seq_len", "positions"),
    F("finetune/epochs-not-a-number", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                                     "--out", t / "f", "--epochs", "two"], "--epochs", "finetune --help"),
    F("finetune/out-read-only", lambda fx, t: ["finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev,
                                               "--out", read_only_place(t), "--max-seq-len", 32, *QUIET], "permi"),
    # ---------------------------------------------------------------- eval
    C("eval/batch-size-zero", lambda fx, t: ["eval", fx.ft, "--data", fx.dev, "--batch-size", 0],
      "--batch-size", "eval --help"),
    C("eval/missing-data-option", lambda fx, t: ["eval", fx.ft], "--data", "eval --help"),
    C("eval/checkpoint-missing", lambda fx, t: ["eval", t / "nope", "--data", fx.dev], "nope", "not found"),
    C("eval/checkpoint-is-tokenizer", lambda fx, t: ["eval", fx.tok, "--data", fx.dev], "not a checkpoint", "tokenizer"),
    C("eval/data-missing", lambda fx, t: ["eval", fx.ft, "--data", t / "nope.tsv"], "nope.tsv", "not found"),
    C("eval/data-name-too-long", lambda fx, t: ["eval", fx.ft, "--data", long_name(t)], "File name too long"),
    C("eval/corpus-other-tokenizer", lambda fx, t: ["eval", fx.run, "--data", fx.corpus2], "tokenizer"),
    C("eval/staging-folder", lambda fx, t: ["eval", killed_finetune(fx, t), "--data", fx.dev], "unfinished"),
    C("eval/manifest-without-kind", lambda fx, t: ["eval", manifest_edit(lambda fx: fx.ft / "best", "{}")(fx, t),
                                                   "--data", fx.dev], "manifest.json", "no 'kind'"),
    C("eval/damaged-weights", lambda fx, t: ["eval", damaged_weights(fx, t), "--data", fx.corpus], "checksum"),
    C("eval/malformed-tsv", lambda fx, t: ["eval", fx.ft, "--data", write(t / "b.tsv", "sentence\tlabel\nx\n")],
      "b.tsv:2", "columns"),
    C("eval/bad-split", lambda fx, t: ["eval", fx.run, "--data", fx.corpus, "--split", "test"], "test"),
    # ---------------------------------------------------------------- convert
    C("convert/no-direction", lambda fx, t: ["convert", fx.ft, "--out", t / "h"], "--to hf", "--from hf"),
    C("convert/unknown-format", lambda fx, t: ["convert", fx.ft, "--to", "tflite", "--out", t / "h"], "tflite"),  # onnx became a format (issue 21)
    C("convert/from-hf-without-config", lambda fx, t: ["convert", "--from", "hf", write(t / "hf" / "x", "").parent,
                                                       "--out", t / "c"], "config.json"),
    C("convert/to-hf-of-corpus", lambda fx, t: ["convert", fx.corpus, "--to", "hf", "--out", t / "h"], "not a checkpoint"),
    C("convert/out-is-checkpoint", lambda fx, t: ["convert", fx.ft, "--to", "hf", "--out", fx.ft], "finetune-run folder"),
    C("convert/damaged-weights", lambda fx, t: ["convert", damaged_weights(fx, t), "--to", "hf", "--out", t / "h"],
      "checksum"),
    # ---------------------------------------------------------------- embed
    C("predict/pretrain-checkpoint", lambda fx, t: ["predict", fx.run, fx.text], "has no task head",
      "bertcli finetune --task"),
    C("predict/wrong-task", lambda fx, t: ["predict", fx.ft, fx.text, "--task", "ner"], "fine-tuned for cls, not ner"),
    C("predict/text-missing", lambda fx, t: ["predict", fx.ft, t / "nope.txt"], "nope.txt", "not found"),
    C("embed/checkpoint-missing", lambda fx, t: ["embed", t / "nope", fx.text], "nope", "not found"),
    C("embed/text-missing", lambda fx, t: ["embed", fx.run, t / "nope.txt"], "nope.txt", "not found"),
    C("embed/binary-text", lambda fx, t: ["embed", fx.run, write(t / "b.bin", b"a\x00b")], "b.bin", "binary"),
    C("embed/bad-pooling", lambda fx, t: ["embed", fx.run, fx.text, "--pooling", "max"], "pooling", "max"),
    C("embed/batch-zero", lambda fx, t: ["embed", fx.run, fx.text, "--batch-size", 0], "batch"),
    C("embed/staging-folder", lambda fx, t: ["embed", killed_finetune(fx, t) / "best", fx.text], "unfinished"),
    # ---------------------------------------------------------------- report
    C("report/run-missing", lambda fx, t: ["report", t / "nope"], "nope", "not found"),
    C("report/not-a-run", lambda fx, t: ["report", fx.corpus], "is a corpus folder", "pretrain"),
    C("report/damaged-metrics", lambda fx, t: ["report", _damaged_metrics(fx, t), "--out", t / "rep"],
      "metrics.jsonl:2", "damaged"),
    C("report/no-metrics-yet", lambda fx, t: ["report", _no_metrics(fx, t), "--out", t / "rep"], "no metrics yet"),
    C("report/out-is-run", lambda fx, t: ["report", fx.run, "--out", fx.run], "--out", "separate"),
    C("report/out-is-file", lambda fx, t: ["report", fx.run, "--out", fx.text], "is a file"),
    C("report/staging-folder", lambda fx, t: ["report", killed_finetune(fx, t)], "unfinished"),
    # ---------------------------------------------------------------- list and the command line itself
    C("list/unknown-listing", lambda fx, t: ["list", "sizes"], "sizes", "list --help"),
    C("list/unknown-option", lambda fx, t: ["list", "presets", "--yaml"], "--yaml"),
    C("cli/unknown-command", lambda fx, t: ["pretrian"], "pretrian"),
]


def _damaged_tokenizer(fx, tmp) -> Path:
    tok = copy(fx.tok, tmp / "tok")
    for path in tok.iterdir():
        if path.suffix == ".model":
            path.write_bytes(b"garbage")
    return tok


def _damaged_metrics(fx, tmp) -> Path:
    run = copy(fx.run, tmp / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:15]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run


def _no_metrics(fx, tmp) -> Path:
    run = copy(fx.run, tmp / "run")
    (run / "metrics.jsonl").write_text("")
    return run


def test_catalogue_covers_every_subcommand():
    from bertcli.cli import app
    import typer.main

    command = typer.main.get_command(app)
    names = set()
    for name, sub in command.commands.items():
        names |= {f"{name}-{inner}" for inner in getattr(sub, "commands", {})} or {name}
    covered = {case.id.split("/")[0] for case in CASES}
    assert names - {"list-presets", "list-recipes"} <= covered, names - covered
    assert "list" in covered


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, fx, tmp_path, capsys, monkeypatch):
    args = case.args(fx, tmp_path)
    before = tree_hash(fx.root, tmp_path)
    if case.stdin is not None:
        monkeypatch.setattr("sys.stdin", _Stdin(case.stdin.encode()))
    capsys.readouterr()
    code = cli(*args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == case.code, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in case.fragments:
        assert fragment in lines[0], lines[0]
    assert captured.out == ""
    assert tree_hash(fx.root, tmp_path) == before, "an existing folder changed"


class _Stdin:
    def __init__(self, data: bytes):
        import io

        self.buffer = io.BytesIO(data)


# ----------------------------------------------------------------------------- interrupted runs


def _bertcli(*args) -> list[str]:
    return [sys.executable, "-m", "bertcli", *map(str, args)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def _wait_for(predicate, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.05)


def _default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT, so
    # under `make test &` the child would never see the Ctrl-C these tests send: restore it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_finetune(fx, out: Path) -> subprocess.Popen:
    return subprocess.Popen(_bertcli("finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev, "--out", out,
                                     "--max-seq-len", 32, "--batch-size", 4, "--set", "train.max_steps=100000",
                                     "--set", "train.log_every=1", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True,
                            preexec_fn=_default_sigint)


def _training(out: Path) -> Callable[[], bool]:
    return lambda: any((p / "metrics.jsonl").is_file() for p in out.parent.glob(f".{out.name}.tmp-*"))


@pytest.mark.parametrize("signum,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupted_finetune_leaves_nothing(fx, tmp_path, signum, code, word):
    out = tmp_path / "ft"
    before = tree_hash(fx.root)
    proc = _start_finetune(fx, out)
    _wait_for(_training(out))
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=300)  # generous: a loaded machine delays the exit, not the outcome
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert proc.returncode == code, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], stderr
    assert "Traceback" not in stderr and stdout == ""
    assert list(tmp_path.iterdir()) == []  # no run folder, no staging folder
    assert tree_hash(fx.root) == before


def test_killed_finetune_is_refused_then_cleaned_by_the_next_run(fx, tmp_path, capsys):
    out = tmp_path / "ft"
    proc = _start_finetune(fx, out)
    _wait_for(_training(out))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    (staging,) = tmp_path.glob(".ft.tmp-*")
    assert not out.exists()
    for args in (["eval", staging, "--data", fx.dev], ["inspect", staging]):
        assert cli(*args) == 2
        assert "unfinished" in capsys.readouterr().err
    assert cli("finetune", "--init", fx.run, "--train", fx.train, "--dev", fx.dev, "--out", out, "--epochs", 1,
               "--max-seq-len", 32, *QUIET) == 0
    assert not staging.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ft"]
    assert not (out / ".bertcli-staging").exists() and (out / "best" / "model.safetensors").is_file()


def test_interrupted_pretrain_keeps_its_checkpoints_and_resumes(fx, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_bertcli("pretrain", "--corpus", fx.corpus, "--out", out, *TINY, "--set", "train.max_steps=100000",
                                     "--set", "train.batch_size=4", "--set", "train.save_every=1",
                                     "--set", "train.keep_last=2", "--set", "train.log_every=1", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), text=True,
                            preexec_fn=_default_sigint)
    _wait_for(lambda: len(list((out / "steps").glob("step-*"))) >= 2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    steps = sorted(p.name for p in (out / "steps").iterdir())
    assert len(steps) <= 2 and all(name.startswith("step-") for name in steps), steps  # retention; no staging left
    last = int(steps[-1].split("-")[1])
    assert cli("pretrain", "--out", out, "--resume", "--set", f"train.max_steps={last + 1}", *QUIET) == 0
    assert (out / "final" / "model.safetensors").is_file()


def test_stale_staging_of_a_killed_pretrain_is_cleaned_by_its_resume(fx, tmp_path):
    """kill -9 in the middle of a checkpoint save leaves steps/.step-N.tmp-*; the resumed run, which
    saves that step again, deletes it. A staging folder whose writer is alive is left alone."""
    run = copy(fx.run, tmp_path / "run")
    shutil.rmtree(run / "final")
    shutil.rmtree(run / "steps" / "step-00000004")
    dead = run / "steps" / ".step-00000004.tmp-dead0001"
    live = tmp_path / ".other.tmp-live0001"
    for folder, pid in ((dead, 999999999), (live, os.getpid())):
        folder.mkdir()
        (folder / ".bertcli-staging").write_text(f"{pid}\n")
        (folder / "model.safetensors").write_bytes(b"half")
    assert cli("pretrain", "--out", run, "--resume", *QUIET) == 0
    assert sorted(p.name for p in (run / "steps").iterdir()) == ["step-00000002", "step-00000004"]
    from bertcli import artifacts

    assert artifacts.remove_stale_staging(tmp_path / "other") == [] and live.is_dir()
