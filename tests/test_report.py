"""`bertcli report`: figures and a self-contained HTML page from real (tiny) runs; retention and
TensorBoard events, which also show in a run's folder."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import TINY_WORLD_MODEL, cli

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """The parts of the page the tests look at: title, summary table cells, images, figure ids, links."""

    def __init__(self, text: str):
        super().__init__()
        self.title, self.tables, self.images, self.figures, self.urls = "", [], [], [], []
        self._in, self._row, self._cell = [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in.append(tag)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.urls.append(attrs[key])
        if tag == "table":
            self.tables.append({"id": attrs.get("id"), "header": [], "rows": []})
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "figure":
            self.figures.append(attrs.get("id"))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
        elif tag == "tr" and self.tables:
            if "thead" in self._in:
                self.tables[-1]["header"] = self._row
            else:
                self.tables[-1]["rows"].append(self._row)
            self._row = None
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        if self._in and self._in[-1] == "title":
            self.title += data
        if self._cell is not None:
            self._cell += data


def report(*runs, out: Path) -> Path:
    assert cli("report", *runs, "--out", out) == 0
    return out


def test_report_page_structure(tiny_world, tmp_path, capsys):
    out = report(tiny_world.run, tiny_world.ft, out=tmp_path / "rep")
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "report.html")  # the page's path is the only output
    text = (out / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.title.startswith("bertcli report: ")
    assert page.urls == [] and "http://" not in text and "https://" not in text  # self-contained
    (table,) = [t for t in page.tables if t["id"] == "summary"]
    assert table["header"][:3] == ["run", "kind", "status"] and "final metrics" in table["header"]
    assert [row[1] for row in table["rows"]] == ["pretrain-run", "finetune-run"]
    assert all(row[2] == "finished" for row in table["rows"])
    assert {"pretrain_loss", "pretrain_mlm", "pretrain_nsp", "pretrain_heldout", "pretrain_optim",
            "pretrain_throughput", "finetune_loss", "finetune_dev", "finetune_optim"} <= set(page.figures)
    assert len(page.images) == len(page.figures)
    for src, name in zip(page.images, page.figures):
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data.startswith(PNG) and data == (out / f"{name}.png").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "report" and len(manifest["figures"]) == len(page.figures)
    # the summary holds the runs' own numbers
    rows = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (tiny_world.run / "metrics.jsonl").read_text().splitlines()]
    last_eval = [r for r in records if r["split"] == "eval"][-1]
    assert rows[0]["final"]["perplexity"] == pytest.approx(last_eval["perplexity"])
    assert rows[0]["tokens_seen"] == "≈ 1.02 k"  # 4 steps x 8 examples x 32 tokens (no tokens_seen logged)
    dev = [json.loads(line) for line in (tiny_world.ft / "metrics.jsonl").read_text().splitlines()]
    best = max((r for r in dev if r["split"] == "dev"), key=lambda r: r["accuracy"])
    assert rows[1]["final"]["best_dev_accuracy"] == pytest.approx(best["accuracy"])
    assert rows[0]["hardware"].startswith("cpu:")


def test_report_on_a_running_run_skips_a_partial_last_line(tiny_world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_world.run, run)
    shutil.rmtree(run / "final")
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 6, "split": "tr')  # the writer is mid-line
    out = report(run, out=tmp_path / "rep")
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["status"].startswith("running or stopped at step 4 of 4")
    assert "last line still being written" in capsys.readouterr().err


def test_report_on_a_finetune_in_progress(tiny_world, tmp_path):
    """A fine-tune writes into a hidden staging folder until it ends; `report FT` finds it while its
    writer lives (here: this process), and writes the report beside it, not into it."""
    staging = tmp_path / ".ft.tmp-abc123"
    shutil.copytree(tiny_world.ft, staging)
    shutil.rmtree(staging / "final")
    (staging / ".bertcli-staging").write_text(f"{os.getpid()}\n")
    assert cli("report", tmp_path / "ft") == 0
    rows = json.loads((tmp_path / "ft-report" / "summary.json").read_text())
    assert rows[0]["run"].endswith("ft") and rows[0]["status"].startswith("running or stopped at step 4")
    assert not (staging / "report").exists()


def test_report_of_several_runs_and_extra_keys(tiny_world, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_world.run, other)
    lines = [json.loads(line) for line in (other / "metrics.jsonl").read_text().splitlines()]
    for record in lines:  # what the engine's metrics add: they get figures without code changes
        if record["split"] == "train":
            record.update(grad_norm=1.5, tokens_seen=record["step"] * 200, peak_memory_gb=0.25)
    (other / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = report(tiny_world.run, other, out=tmp_path / "rep")
    page = Page((out / "report.html").read_text())
    assert "pretrain_other" in page.figures and "peak_memory_gb" in (out / "report.html").read_text()
    rows = json.loads((out / "summary.json").read_text())
    assert [r["run"].split("/")[-1] for r in rows] == ["run", "other"]
    assert rows[1]["tokens_seen"] == "800"  # logged tokens_seen, not the estimate


def test_report_default_folder_is_inside_the_run_and_is_replaced(tiny_world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_world.ft, run)
    assert cli("report", run) == 0 and cli("report", run) == 0
    assert (run / "report" / "report.html").is_file()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []


def test_report_without_matplotlib_says_how_to_install(tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli("report", tiny_world.run, "--out", tmp_path / "rep") == 2
    assert "pip install 'bertcli[report]'" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_keep_last_retention(tiny_world, tmp_path):
    out = tmp_path / "run"
    assert cli("pretrain", "--corpus", tiny_world.corpus, "--out", out, *TINY_WORLD_MODEL, "--set", "train.max_steps=5",
               "--set", "train.batch_size=4", "--set", "train.save_every=1", "--set", "train.keep_last=2",
               "--set", "runtime.progress=none") == 0
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["step-00000004", "step-00000005"]
    assert cli("pretrain", "--out", out, "--resume", "--set", "train.max_steps=7", "--set", "runtime.progress=none") == 0
    assert sorted(p.name for p in (out / "steps").iterdir()) == ["step-00000006", "step-00000007"]


def test_tensorboard_events(tiny_world, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert cli("pretrain", "--corpus", tiny_world.corpus, "--out", out, *TINY_WORLD_MODEL, "--set", "train.max_steps=4",
               "--set", "train.batch_size=4", "--set", "train.log_every=2", "--set", "runtime.tensorboard=true",
               "--set", "train.eval_examples=8", "--set", "runtime.progress=none") == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert events.Scalars("train/loss")[-1].value == pytest.approx(records[1]["loss"], rel=1e-6)
    assert [e.step for e in events.Scalars("eval/perplexity")] == [4]


def test_tensorboard_missing_is_one_line_before_training(tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "ft"
    assert cli("finetune", "--init", tiny_world.run, "--train", tiny_world.train, "--dev", tiny_world.dev, "--out", out,
               "--max-seq-len", 32, "--set", "runtime.tensorboard=true", "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: runtime.tensorboard=true needs the tensorboard package") and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_events_of_a_finetune(tiny_world, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "ft"
    assert cli("finetune", "--init", tiny_world.run, "--train", tiny_world.train, "--dev", tiny_world.dev, "--out", out,
               "--epochs", 2, "--batch-size", 16, "--max-seq-len", 32, "--set", "runtime.tensorboard=true",
               "--quiet") == 0
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("dev/accuracy")] == [2, 4]
