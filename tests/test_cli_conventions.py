"""Terminal and pipeline conventions: --version, list, exit codes, --quiet, --debug, progress lines off
a terminal, and closed pipes (`| head`) that end quietly with only data on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_WORLD_MODEL, cli

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
BERTCLI = f"{sys.executable} -m bertcli"


def shell(command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run a shell pipeline with pipefail, so that bertcli's own exit code counts."""
    return subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True, env=ENV,
                          input=stdin, timeout=300)


def test_version(capsys):
    from bertcli import __version__

    assert cli("--version") == 0
    assert capsys.readouterr().out == f"bertcli {__version__}\n"


def test_help_documents_exit_codes(capsys):
    assert cli("--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("0 ok", "1 unexpected failure", "2 bad input", "130 interrupted", "--quiet", "--debug"):
        assert phrase in text


def test_list_presets_counts_match_real_models(capsys):
    import torch

    from bertcli.model import BertConfig, BertEncoder, preset_shape

    assert cli("list", "presets", "--json") == 0
    rows = {row["preset"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {"tiny", "mini", "small", "medium", "base", "large", "L4-H256"} <= set(rows)
    assert rows["base"]["parameters"] == 109_482_240  # Hugging Face's bert-base-uncased BertModel
    for name in ("tiny", "L4-H256"):
        with torch.device("meta"):
            model = BertEncoder(BertConfig(vocab_size=30522, **preset_shape(name)))
        assert rows[name]["parameters"] == sum(p.numel() for p in model.parameters())


def test_list_recipes(capsys):
    assert cli("list", "recipes", "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"stage": "pretrain", "recipe": "mini"}.items() <= next(r for r in rows if r["recipe"] == "mini").items()
    assert {r["stage"] for r in rows} == {"corpus", "pretrain", "finetune"}


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert cli("inspect", tmp_path / "nope") == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli("inspect", tmp_path / "nope", "--debug") == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error: ")


def test_unexpected_failure_is_one_line_and_exit_1(tiny_world, monkeypatch, capsys):
    from bertcli.stages import inspect

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(inspect, "run", broken)
    assert cli("inspect", tiny_world.tok) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: boom" in err and "--debug" in err


def test_progress_is_plain_lines_off_a_terminal_and_silent_with_quiet(tiny_world, tmp_path):
    args = (f"pretrain --corpus {tiny_world.corpus} {' '.join(TINY_WORLD_MODEL)} --set train.max_steps=4 "
            f"--set train.batch_size=4 --set train.log_every=2 --set train.eval_examples=8")
    plain = shell(f"{BERTCLI} {args} --out {tmp_path / 'a'}")
    assert plain.returncode == 0 and plain.stdout == ""
    lines = [line for line in plain.stderr.splitlines() if line.startswith("pretrain step")]
    assert [line.split()[2] for line in lines] == ["2/4", "4/4"]
    assert all("tok/s" in line and "eta" in line for line in lines)
    quiet = shell(f"{BERTCLI} {args} --out {tmp_path / 'b'} --quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_closed_pipes_end_quietly(tiny_world, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"line {i} of the text to encode, with some words in it\n" for i in range(20000)))
    encode = shell(f"{BERTCLI} tokenize encode --tokenizer {tiny_world.tok} {lines} | head -n 3")
    assert encode.returncode == 0 and encode.stderr == ""
    assert len(encode.stdout.splitlines()) == 3 and all(t.isdigit() for t in encode.stdout.split())

    texts = tmp_path / "texts.txt"
    texts.write_text("a sentence to embed\n" * 3000)
    embed = shell(f"cat {texts} | {BERTCLI} embed {tiny_world.run} | head -n 1")
    assert embed.returncode == 0 and embed.stderr == ""
    (line,) = embed.stdout.splitlines()
    assert len(json.loads(line)["embedding"]) == 32

    dump = shell(f"{BERTCLI} inspect {tiny_world.corpus} --dump 500 | head -1")
    assert dump.returncode == 0 and dump.stderr == ""
    assert "input_ids" in json.loads(dump.stdout)


def test_usage_errors_are_one_line(capsys):
    assert cli("eval") == 2
    err = capsys.readouterr().err
    assert err == "error: bertcli eval: missing argument 'checkpoint'; see `bertcli eval --help`\n"
