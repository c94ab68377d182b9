"""Faults that real clusters produce: a full disk while writing, two writers on one folder, shards
damaged after the build, and the one-line answers to them (issue 20)."""

from __future__ import annotations

import ast
import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TINY_WORLD_MODEL, cli

QUIET = ["--set", "runtime.progress=none"]
PRETRAIN_SMALL = [*TINY_WORLD_MODEL, "--set", "train.batch_size=8", "--set", "train.log_every=2", *QUIET]


def one_line_error(capsys) -> str:
    """The command's error: its last line of stderr, the only one that starts with "error:"."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err and "a bug in bertcli" not in err
    return errors[0]


def finetune_args(world, out) -> list:
    return ["finetune", "--init", world.run, "--train", world.train, "--dev", world.dev, "--out", out,
            "--epochs", 1, "--max-seq-len", 32, *QUIET]


# ----------------------------------------------------------------------------- out of space


def _fail_on_call(number: int, error: BaseException):
    """A stand-in for a writer function that raises `error` on its `number`-th call."""
    calls = {"n": 0}

    def wrap(real):
        def writer(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == number:
                raise error
            return real(*args, **kwargs)
        return writer
    return wrap


def test_full_disk_at_a_pretraining_checkpoint_keeps_the_earlier_one_resumable(tiny_world, tmp_path, capsys,
                                                                               monkeypatch):
    import bertcli.checkpoint as checkpoint

    run = tmp_path / "run"
    torch_error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 4032")
    monkeypatch.setattr(checkpoint, "save_file", _fail_on_call(2, torch_error)(checkpoint.save_file))
    code = cli("pretrain", "--corpus", tiny_world.corpus, "--out", run, *PRETRAIN_SMALL,
               "--set", "train.max_steps=4", "--set", "train.save_every=2")
    err = one_line_error(capsys)
    assert code == 2
    assert f"{run / 'steps' / 'step-00000004'}: no space left on device" in err
    assert "about " in err and "needed" in err and "free space or choose a folder on another disk" in err
    assert sorted(p.name for p in (run / "steps").iterdir()) == ["step-00000002"]  # no staging left
    monkeypatch.undo()
    assert cli("pretrain", "--out", run, "--resume", *QUIET) == 0
    assert (run / "final" / "model.safetensors").is_file()
    assert sorted(p.name for p in (run / "steps").iterdir()) == ["step-00000002", "step-00000004"]


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError("8192 requested and 1024 written"),  # numpy's short write
])
def test_full_disk_while_building_a_corpus_is_one_line_and_leaves_nothing(tiny_world, tmp_path, capsys, monkeypatch,
                                                                          error):
    from bertcli.data.shards import ShardFiles

    out = tmp_path / "corpus"
    monkeypatch.setattr(ShardFiles, "append", _fail_on_call(1, error)(ShardFiles.append))
    assert cli("build-corpus", "--input", tiny_world.text, "--tokenizer", tiny_world.tok, "--out", out,
               "--max-seq-len", 32, "--workers", 1, "--set", "progress=none") == 2
    assert f"{out}: no space left on device" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_at_a_finetune_save_keeps_the_previous_folder(tiny_world, tmp_path, capsys, monkeypatch):
    import bertcli.checkpoint as checkpoint

    out = tmp_path / "ft"
    assert cli(*finetune_args(tiny_world, out)) == 0
    before = (out / "best" / "model.safetensors").read_bytes()
    safetensors_error = Exception("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                  "message: \"No space left on device\" })")
    monkeypatch.setattr(checkpoint, "save_file", _fail_on_call(1, safetensors_error)(checkpoint.save_file))
    assert cli(*finetune_args(tiny_world, out)) == 2
    assert f"{out}: no space left on device" in one_line_error(capsys)
    assert (out / "best" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft"]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def test_a_real_full_file_system(tiny_world, tmp_path, capsys):
    """A 64 KB tmpfs (where the machine lets the tests mount one: CI runs as root) is too small for a
    fine-tuned model: a real ENOSPC from safetensors, one line, nothing left on the small disk."""
    disk = tmp_path / "small"
    if not _mount_tmpfs(disk, "64k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        assert cli(*finetune_args(tiny_world, disk / "ft")) == 2
        err = one_line_error(capsys)
        assert f"{disk / 'ft'}: no space left on device" in err and "free now" in err
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, timeout=30)


def test_pretrain_warns_before_training_when_checkpoints_cannot_fit(tiny_world, tmp_path, capsys, monkeypatch):
    import bertcli.stages.pretrain as pretrain

    monkeypatch.setattr(pretrain, "free_bytes", lambda folder: 999)
    assert cli("pretrain", "--corpus", tiny_world.corpus, "--out", tmp_path / "run", *PRETRAIN_SMALL,
               "--set", "train.max_steps=2", "--set", "train.save_every=1", "--set", "train.keep_last=1") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning:" in err and "999 bytes free, but 2 resumable checkpoint(s)" in err
    assert "lower train.keep_last" in err


# ----------------------------------------------------------------------------- one writer per folder


def _hold_lock(out: Path) -> subprocess.Popen:
    """Another process that holds `out`'s writer lock, as a running bertcli command does."""
    code = ("import sys, time; from bertcli.folder_lock import lock_output; lock_output(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(300)")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_the_folder_untouched(tiny_world, tmp_path, capsys):
    out = tmp_path / "ft"
    holder = _hold_lock(out)
    try:
        assert cli(*finetune_args(tiny_world, out)) == 2
        err = one_line_error(capsys)
        assert f"{out}: another bertcli (process {holder.pid}) is writing this folder" in err
        assert not out.exists() and not list(tmp_path.glob(".ft.tmp-*"))
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stale lock
        holder.wait()
    assert cli(*finetune_args(tiny_world, out)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ft"]  # the lock file goes with its command


def test_two_resumes_of_one_run_and_two_real_commands(tiny_world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_world.run, run)
    holder = _hold_lock(run)
    try:
        before = sorted(p.name for p in run.rglob("*"))
        assert cli("pretrain", "--out", run, "--resume", "--set", "train.max_steps=6", *QUIET) == 2
        assert f"another bertcli (process {holder.pid})" in one_line_error(capsys)
        assert sorted(p.name for p in run.rglob("*")) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # two real bertcli processes on one --out: the second is refused while the first runs
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = tmp_path / "long"
    first = subprocess.Popen([sys.executable, "-m", "bertcli", "pretrain", "--corpus", str(tiny_world.corpus),
                              "--out", str(out), *map(str, PRETRAIN_SMALL), "--set", "train.max_steps=100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while not (out / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "-m", "bertcli", "pretrain", "--corpus", str(tiny_world.corpus),
                                 "--out", str(out), *map(str, PRETRAIN_SMALL), "--set", "train.max_steps=2"],
                                capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 2
        assert f"another bertcli (process {first.pid}) is writing this folder" in second.stderr
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_readers_need_no_lock(tiny_world, tmp_path, capsys):
    holder = _hold_lock(tiny_world.ft)
    try:
        assert cli("eval", tiny_world.ft, "--data", tiny_world.dev, "--json") == 0
        assert cli("inspect", tiny_world.run) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


# ----------------------------------------------------------------------------- damaged shards


def _corpus_copy(world, tmp_path) -> Path:
    return Path(shutil.copytree(world.corpus, tmp_path / "corpus"))


def test_a_shard_with_changed_bytes_is_named_before_training(tiny_world, tmp_path, capsys):
    corpus = _corpus_copy(tiny_world, tmp_path)
    shard = corpus / "train" / "shard-00000" / "next_sentence_labels.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1  # one label flipped: still a valid array, only the checksum can tell
    shard.write_bytes(bytes(data))
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "run", *PRETRAIN_SMALL,
               "--set", "train.max_steps=2") == 2
    err = one_line_error(capsys)
    assert f"{shard}: its bytes differ from the sha256" in err and "rebuild the corpus" in err
    assert not (tmp_path / "run").exists()


def test_a_shard_with_ids_outside_the_vocabulary_is_named(tiny_world, tmp_path, capsys):
    from bertcli import artifacts

    corpus = _corpus_copy(tiny_world, tmp_path)
    shard = corpus / "train" / "shard-00000" / "input_ids.npy"
    ids = np.load(shard)
    vocab = json.loads((corpus / "manifest.json").read_text())["vocab_size"]
    ids[3] = vocab + 5 if np.iinfo(ids.dtype).max >= vocab + 5 else np.iinfo(ids.dtype).max
    np.save(shard, ids)
    # a manifest that agrees with the bad bytes: only the id check can catch it
    manifest = json.loads((corpus / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["sha256"]["input_ids.npy"] = artifacts.sha256_file(shard)
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "run", *PRETRAIN_SMALL,
               "--set", "train.max_steps=2") == 2
    err = one_line_error(capsys)
    assert f"{shard}: token id {int(ids[3])} is outside the corpus's vocabulary of {vocab}" in err


def test_verification_is_recorded_once_and_repeated_when_asked_or_changed(tiny_world, tmp_path):
    from bertcli.data.shard_integrity import verify_split

    corpus = _corpus_copy(tiny_world, tmp_path)
    vocab = json.loads((corpus / "manifest.json").read_text())["vocab_size"]
    first = verify_split(corpus, "train", vocab)
    assert first["files"] == 8 and first["skipped"] == 0
    second = verify_split(corpus, "train", vocab)
    assert second["files"] == 0 and second["skipped"] == 8
    assert verify_split(corpus, "train", vocab, mode="always")["files"] == 8
    shard = corpus / "train" / "shard-00000" / "a_lens.npy"
    os.utime(shard, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: hashed again
    again = verify_split(corpus, "train", vocab)
    assert again["files"] == 1 and again["skipped"] == 7
    assert sorted(p.name for p in corpus.iterdir()) == sorted(p.name for p in tiny_world.corpus.iterdir())


# ----------------------------------------------------------------------------- the vocabulary a text can give


def test_vocabulary_too_large_says_how_to_reach_it(tmp_path, capsys):
    import random

    rng = random.Random(0)
    text = tmp_path / "text.txt"
    text.write_text("".join(" ".join(rng.choice(["abc", "bcd", "cde", "def", "efa"]) for _ in range(8)) + "\n"
                            for _ in range(400)))
    assert cli("tokenize", "train", "--input", text, "--out", tmp_path / "tok", "--vocab-size", 30000,
               "--set", "max_sentences=200") == 2
    err = one_line_error(capsys)
    assert "yield too few distinct unigram pieces for 30,000" in err
    assert "--set max_sentences=" in err and "use --model-type bpe" in err
    assert "lower --vocab-size or give more text" in err
    assert not (tmp_path / "tok").exists()


# ----------------------------------------------------------------------------- every raised name exists


def _bound_at_module_level(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_every_raised_exception_name_is_defined_in_its_module():
    """`raise UserError(...)` in a module that never imports UserError ends in a NameError (as
    `finetune --seeds 1,x` once did): every name a raise calls must be bound in that module."""
    missing = []
    for path in sorted((ROOT / "src" / "bertcli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = _bound_at_module_level(tree) | set(dir(builtins))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                if node.exc.func.id not in bound:
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {node.exc.func.id}")
    assert missing == []
