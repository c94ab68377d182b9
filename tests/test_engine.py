"""The pretraining engine: torchrun (2 gloo processes = 1 process), SIGTERM pause and exact resume,
skipped non-finite steps, budgets, LAMB and the schedules. Tiny models, a few steps each."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertcli.artifacts import STAGING_MARKER
from bertcli.errors import UserError
from bertcli.train.loop import RunState, TrainJob, train_loop
from bertcli.train.optim import Lamb
from bertcli.train.schedule import lr_at
from bertcli.train.state import load_train_state, save_train_state

from conftest import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--set", "model.hidden_size=32", "--set", "model.num_layers=2",
        "--set", "model.num_heads=2", "--set", "model.intermediate_size=64",
        "--set", "model.max_position_embeddings=64", "--set", "runtime.progress=none",
        "--set", "runtime.threads=1", "--set", "optim.lr=1e-3", "--set", "train.log_every=1"]
NO_DROPOUT = ["--set", "model.dropout=0", "--set", "model.attention_dropout=0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "corpus"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 2, "--seed", 3) == 0
    return out


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def train_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "train"]


@pytest.fixture(scope="module")
def mlm_corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    """Packed MLM-only examples with dynamic masking: no NSP head loss, masks drawn per example."""
    out = tmp_path_factory.mktemp("mlm") / "corpus"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 1, "--objective", "mlm", "--masking", "dynamic") == 0
    return out


@pytest.mark.parametrize("kind", ["mlm_nsp", "mlm_dynamic"])
def test_torchrun_two_processes_equal_one_process(kind, corpus, mlm_corpus, tmp_path):
    data = corpus if kind == "mlm_nsp" else mlm_corpus
    common = ["pretrain", "--corpus", str(data), *TINY, *NO_DROPOUT, "--set", "train.max_steps=4",
              "--set", "train.batch_size=8", "--set", "runtime.device=cpu"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(*common, "--out", one) == 0
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "-m", "bertcli", *common, "--out", str(two)]
    result = subprocess.run(launch, env=env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = train_rows(one), train_rows(two)
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    keys = ("loss", "mlm_loss", "nsp_loss") if kind == "mlm_nsp" else ("loss", "mlm_loss")
    for ra, rb in zip(a, b):
        for key in keys:
            assert rb[key] == pytest.approx(ra[key], rel=1e-5)
        assert rb["tokens"] == ra["tokens"]
    wa, wb = load_file(str(one / "final" / "model.safetensors")), load_file(str(two / "final" / "model.safetensors"))
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) < 1e-5
    assert not list(two.glob("**/rank*"))  # rank 1 wrote nothing of its own


def test_sigterm_saves_a_checkpoint_that_resumes_exactly(corpus, tmp_path):
    common = [*TINY, "--set", "train.max_steps=30", "--set", "train.batch_size=8", "--set", "runtime.device=cpu"]
    straight, paused = tmp_path / "straight", tmp_path / "paused"
    assert cli("pretrain", "--corpus", corpus, "--out", straight, *common) == 0
    process = subprocess.Popen([sys.executable, "-m", "bertcli", "pretrain", "--corpus", str(corpus),
                                "--out", str(paused), *common], env=env(), stderr=subprocess.PIPE, text=True)
    metrics = paused / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    assert "saved step" in err and "terminated (SIGTERM)" in err and "Traceback" not in err
    steps = sorted((paused / "steps").iterdir())
    assert len(steps) == 1 and not (paused / "final").exists()
    stopped_at = int(steps[0].name.split("-")[1])
    assert 3 <= stopped_at < 30
    # what a SIGKILL mid-save leaves: a hidden staging folder whose writer is gone; --resume clears it
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = paused / "steps" / f".step-{stopped_at + 1:08d}.tmp-killed"
    leftover.mkdir()
    (leftover / STAGING_MARKER).write_text(f"{dead.pid}\n")
    assert cli("pretrain", "--out", paused, "--resume", "--set", "runtime.progress=none") == 0
    assert not leftover.exists()
    a, b = load_file(str(straight / "final" / "model.safetensors")), load_file(str(paused / "final" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    keep = ("step", "loss", "mlm_loss", "nsp_loss", "grad_norm", "lr", "tokens", "skipped_steps")
    assert [{k: r[k] for k in keep} for r in train_rows(paused)] == [{k: r[k] for k in keep} for r in train_rows(straight)]


def test_token_budget_sets_the_horizon_and_stops(corpus, tmp_path):
    out = tmp_path / "budget"
    assert cli("pretrain", "--corpus", corpus, "--out", out, *TINY, "--set", "train.batch_size=4",
               "--set", "train.max_tokens=1000", "--set", "optim.schedule=cosine") == 0
    rows = train_rows(out)
    assert rows[-1]["tokens"] >= 1000 and rows[-2]["tokens"] < 1000
    assert rows[-1]["lr"] < rows[0]["lr"] * 2  # the cosine ran over the budget's steps, not max_steps


def test_world_size_change_is_refused(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    save_train_state(tmp_path, optimizer, RunState(step=5), [{"torch": torch.get_rng_state(), "cuda": torch.empty(0)}])
    assert load_train_state(tmp_path, optimizer).step == 5
    with pytest.raises(UserError, match=r"saved by 1 process\(es\), resumed with 2.*--nproc_per_node 1"):
        load_train_state(tmp_path, optimizer, rank=0, world_size=2)


def linear_job(tmp_path, bad_steps: set[int], max_bad_steps: int, rewind=None) -> tuple[TrainJob, torch.nn.Module]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x, y = torch.randn(8, 4), torch.randn(8, 1)

    def losses(m, batch):
        loss = ((m(x) - y) ** 2).mean()
        return {"loss": loss * math.nan if batch["step"] in bad_steps else loss}

    job = TrainJob(total_steps=6, peak_lr=0.1, warmup=0, grad_clip=1.0, log_every=1,
                   micro_batches=lambda step: [{"step": step}], losses=losses, after_step=lambda done: None,
                   metrics_path=tmp_path / "metrics.jsonl", max_bad_steps=max_bad_steps, rewind=rewind,
                   schedule="constant")
    return job, model


def test_a_non_finite_step_is_skipped_and_counted(tmp_path):
    job, model = linear_job(tmp_path, {2}, max_bad_steps=1)
    seen = []
    job.after_step = lambda done: seen.append(model.weight.detach().clone())
    state = train_loop(model, torch.optim.SGD(model.parameters(), lr=0.1), job, 0, "none")
    assert state.step == 6 and state.skipped == 1
    assert torch.equal(seen[2], seen[1]) and not torch.equal(seen[3], seen[2])  # step 3 (index 2) did nothing
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 4, 5, 6] and rows[-1]["skipped_steps"] == 1
    assert all(r["grad_norm"] > 0 for r in rows)


def test_too_many_bad_steps_stop_or_rewind(tmp_path):
    job, model = linear_job(tmp_path, {1, 2}, max_bad_steps=1)
    with pytest.raises(UserError, match="at step 3, 2 step\\(s\\) in a row"):
        train_loop(model, torch.optim.SGD(model.parameters(), lr=0.1), job, 0, "none")

    rewinds = []

    def rewind(state):
        rewinds.append(state.step)
        state.step, state.lr_scale = 1, state.lr_scale / 2
        return state

    job, model = linear_job(tmp_path, {1, 2}, max_bad_steps=1, rewind=rewind)
    job.losses = (lambda inner: lambda m, b: inner(m, b) if not rewinds else {"loss": ((m.weight) ** 2).sum()})(job.losses)
    state = train_loop(model, torch.optim.SGD(model.parameters(), lr=0.1), job, 0, "none")
    assert rewinds == [3] and state.step == 6 and state.lr_scale == 0.5 and state.skipped == 2


def test_schedules():
    assert lr_at(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(10, 1.0, 10, 100, "linear") == pytest.approx(1.0)
    assert lr_at(55, 1.0, 10, 100, "linear") == pytest.approx(0.5)
    assert lr_at(55, 1.0, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_at(32, 1.0, 10, 100, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 22 / 90)))
    assert lr_at(99, 1.0, 10, 100, "constant") == 1.0


def test_lamb_step_is_trust_ratio_times_lr():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5, 3))
    before = w.detach().clone()
    w.grad = torch.randn(5, 3)
    Lamb([w], lr=0.01).step()
    # First step: m_hat = g, v_hat = g^2, so the update is ~sign(g) and its size is lr * ||w||.
    assert float((w.detach() - before).norm()) == pytest.approx(0.01 * float(before.norm()), rel=1e-4)


def test_fp16_with_loss_scaling_runs_on_cpu(corpus, tmp_path):
    out = tmp_path / "fp16"
    assert cli("pretrain", "--corpus", corpus, "--out", out, *TINY, "--dtype", "fp16", "--set", "train.max_steps=3",
               "--set", "train.batch_size=4", "--set", "runtime.device=cpu", "--set", "optim.name=lamb") == 0
    rows = train_rows(out)
    assert rows[-1]["step"] == 3 and math.isfinite(rows[-1]["loss"]) and rows[-1]["peak_memory_mib"] > 0


def test_two_phases_continue_from_phase_one_with_positions_checked(corpus, tokenizer_dir, text_files, tmp_path):
    long_corpus = tmp_path / "corpus128"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", long_corpus,
               "--max-seq-len", 128, "--dupe-factor", 1) == 0
    short = ["--set", "train.max_steps=2", "--set", "train.batch_size=4"]
    for positions in (64, 128):
        phase1 = tmp_path / f"phase1-{positions}"
        assert cli("pretrain", "--corpus", corpus, "--out", phase1, *TINY, *short,
                   "--set", f"model.max_position_embeddings={positions}") == 0
        code = cli("pretrain", "--corpus", long_corpus, "--out", tmp_path / f"phase2-{positions}", "--init-from",
                   phase1 / "final", *TINY, *short)
        assert code == (2 if positions == 64 else 0)
    assert (tmp_path / "phase2-128" / "final" / "model.safetensors").is_file()
    assert not (tmp_path / "phase2-64").exists()
