"""`bertcli report RUN [RUN ...]`: the curves of one or more runs as PNG images and one HTML page.

Reads what runs already write (manifest.json, config.yaml, metrics.jsonl), so it works on a run that
is still going: a last line cut short by the writer is skipped. Several runs share each figure's
axes: pretraining runs are drawn against tokens seen, fine-tuning runs against epochs, so "pretrained
vs random" or "fp32 vs bf16" is one command. Keys that other parts of bertcli add to metrics.jsonl
(grad_norm, peak memory, skipped steps ...) get figures of their own when present.

Report folder (written under a temporary name, renamed into place when complete):
  report.html    one self-contained page: summary table, figures inline (base64), configs; no network
  *.png          each figure on its own
  summary.json   the summary table as data
  manifest.json  kind "report"
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bertcli import artifacts
from bertcli.console import console
from bertcli.errors import UserError
from bertcli.folder_lock import writes_output
from bertcli.metrics_log import read_metrics

RUN_KINDS = ("pretrain-run", "finetune-run")
# train-record keys drawn in the fixed figures; any other numeric key gets a figure of its own
KNOWN_TRAIN_KEYS = {"step", "split", "epoch", "loss", "mlm_loss", "nsp_loss", "lr", "tokens_per_s", "tokens_seen",
                    "grad_norm", "mlm_accuracy", "nsp_accuracy", "disc_loss", "disc_accuracy", "replaced_fraction"}
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class Run:
    path: Path
    name: str
    kind: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    records: list[dict[str, Any]]
    partial_line: bool = False
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def train(self) -> list[dict]:
        return [r for r in self.records if r.get("split", "train") == "train"]

    @property
    def evals(self) -> list[dict]:
        """Held-out records: "eval" for pretraining, "dev" for fine-tuning."""
        return [r for r in self.records if r.get("split") in ("eval", "dev")]


# ----------------------------------------------------------------------------- reading runs


def load_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.exists():
        # A fine-tune in progress lives in its staging folder until it finishes: report that one.
        path = artifacts.live_staging(path) or path
    if not path.exists():
        raise UserError(f"{path}: not found; give a run folder from `bertcli pretrain` or `bertcli finetune`")
    if not path.is_dir():
        raise UserError(f"{path}: is a file; give a run folder from `bertcli pretrain` or `bertcli finetune`")
    # Reading a live run's staging folder is fine (nothing is taken from it); a dead one is refused.
    manifest = _read_live_manifest(path) if artifacts.is_live_staging(path) else artifacts.read_manifest(path)
    if manifest is None:
        raise UserError(f"{path}: no {artifacts.MANIFEST}, so not a bertcli folder; give a run folder from "
                        f"`bertcli pretrain` or `bertcli finetune`")
    if manifest["kind"] not in RUN_KINDS:
        raise UserError(f"{path}: is a {manifest['kind']} folder; `bertcli report` draws runs: give a folder "
                        f"from `bertcli pretrain` or `bertcli finetune`")
    config_path = path / artifacts.CONFIG
    try:
        run_config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise UserError(f"{config_path}: not valid YAML; the run folder is damaged")
    records, partial = read_metrics(path / artifacts.METRICS)
    if not records:
        raise UserError(f"{path / artifacts.METRICS}: no metrics yet; a run logs every train.log_every steps, "
                        f"report it once it has")
    return Run(path, _display_name(path), manifest["kind"], manifest, run_config or {}, records, partial,
               _model_of(path))


def _read_live_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads((path / artifacts.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("kind"), str) else None


def _display_name(path: Path) -> str:
    if artifacts.is_live_staging(path):  # .ft.tmp-abc123 -> ft (running)
        path = path.parent / path.name[1:].split(".tmp-")[0]
    resolved = path.resolve()
    return f"{resolved.parent.name}/{resolved.name}" if resolved.parent.name else resolved.name


def _model_of(path: Path) -> dict:
    for sub in ("final", "best"):
        meta = path / sub / "model.json"
        if meta.is_file():
            try:
                return json.loads(meta.read_text(encoding="utf-8")).get("config", {})
            except (json.JSONDecodeError, UnicodeDecodeError):
                return {}
    return {}


# ----------------------------------------------------------------------------- axes


def _section(cfg: dict, name: str) -> dict:
    value = cfg.get(name)
    return value if isinstance(value, dict) else {}


def corpus_seq_len(run: Run) -> int | None:
    corpus = run.config.get("corpus") or run.manifest.get("corpus")
    if not corpus:
        return None
    try:
        manifest = json.loads((Path(corpus) / artifacts.MANIFEST).read_text(encoding="utf-8"))
        return int(manifest.get("max_seq_len")) if manifest.get("max_seq_len") else None
    except (OSError, ValueError):
        return None


def tokens_axis(run: Run) -> tuple[list[float], list[float], bool]:
    """(steps, tokens) pairs for a pretraining run's train records, and whether the tokens are an
    estimate. `tokens_seen` is used when the run logs it; otherwise steps x batch x sequence length
    (an upper bound: it counts padding)."""
    steps = [float(r["step"]) for r in run.train]
    if run.train and all("tokens_seen" in r for r in run.train):
        return steps, [float(r["tokens_seen"]) for r in run.train], False
    batch = _section(run.config, "train").get("batch_size") or 1
    seq = corpus_seq_len(run) or 128
    return steps, [s * batch * seq for s in steps], True


def tokens_at(run: Run, steps: list[float]) -> list[float]:
    import numpy as np

    known_steps, known_tokens, _ = tokens_axis(run)
    if not known_steps:
        return list(steps)
    # Through the origin, and extrapolated past the last train record at its rate.
    xs, ys = [0.0] + known_steps, [0.0] + known_tokens
    rate = ys[-1] / xs[-1] if xs[-1] else 0.0
    return [float(np.interp(s, xs, ys)) if s <= xs[-1] else s * rate for s in steps]


def steps_per_epoch(run: Run) -> float | None:
    for record in run.evals:
        if record.get("epoch"):
            return float(record["step"]) / float(record["epoch"])
    return None


def finetune_x(run: Run, records: list[dict]) -> tuple[list[float], str]:
    per_epoch = steps_per_epoch(run)
    if per_epoch:
        return [float(r.get("epoch") or r["step"] / per_epoch) for r in records], "epoch"
    return [float(r["step"]) for r in records], "step"


# ----------------------------------------------------------------------------- figures


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("bertcli report needs matplotlib: pip install 'bertcli[report]' (or pip install matplotlib)")
    matplotlib.use("Agg")  # headless: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    path: Path


def _series(records: list[dict], key: str, xs: list[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, float(r[key])) for x, r in zip(xs, records)
             if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _panels(plt, folder: Path, name: str, title: str, caption: str, panels: list[dict]) -> Figure | None:
    """One PNG with a row of panels; each panel {"title", "ylabel", "xlabel", "lines": [(label, xs, ys,
    colour, style)], "logy"}. Panels without data are left out; None when none has data."""
    panels = [p for p in panels if any(line[1] for line in p["lines"])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, xs, ys, colour, style in panel["lines"]:
            if xs:
                ax.plot(xs, ys, style, color=colour, label=label, linewidth=1.4, markersize=4)
        ax.set_title(panel["title"], fontsize=11)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        if panel.get("logy"):
            ax.set_yscale("log")
        if panel["xlabel"].startswith("tokens"):
            from matplotlib.ticker import EngFormatter

            ax.xaxis.set_major_formatter(EngFormatter())  # 400k, 1.2M rather than an offset exponent
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Figure(name, title, caption, path)


def pretrain_figures(plt, runs: list[Run], folder: Path) -> list[Figure]:
    estimated = any(tokens_axis(run)[2] for run in runs)
    xlabel = "tokens (≈ steps × batch × seq len)" if estimated else "tokens seen"
    train, held = {}, {}
    for i, run in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        train[run.name] = (run.train, tokens_axis(run)[1], colour)
        held[run.name] = (run.evals, tokens_at(run, [float(r["step"]) for r in run.evals]), colour)

    def lines(source, key, suffix, style):
        return [(f"{name} {suffix}".strip(), *_series(records, key, xs), colour, style)
                for name, (records, xs, colour) in source.items()]

    def panel(title, ylabel, line_list, logy=False):
        return {"title": title, "ylabel": ylabel, "xlabel": xlabel, "lines": line_list, "logy": logy}

    specs = [
        ("loss", "Training loss", "MLM + NSP loss, averaged over each logging interval.",
         [panel("total loss", "loss", lines(train, "loss", "train", "-"))]),
        ("mlm", "Masked LM", "MLM loss (train: solid; held-out: dashed with markers) and held-out MLM accuracy.",
         [panel("MLM loss", "loss", lines(train, "mlm_loss", "train", "-") + lines(held, "mlm_loss", "held-out", "--o")),
          panel("MLM accuracy", "accuracy", lines(train, "mlm_accuracy", "train", "-") +
                lines(held, "mlm_accuracy", "held-out", "--o"))]),
        ("nsp", "Next sentence prediction", "NSP loss and accuracy; 0.693 and 0.5 are chance.",
         [panel("NSP loss", "loss", lines(train, "nsp_loss", "train", "-") + lines(held, "nsp_loss", "held-out", "--o")),
          panel("NSP accuracy", "accuracy", lines(train, "nsp_accuracy", "train", "-") +
                lines(held, "nsp_accuracy", "held-out", "--o"))]),
        ("electra", "Replaced-token detection (ELECTRA)",
         "The discriminator's loss and accuracy on every real token (train: solid; held-out: dashed), and "
         "its held-out ROC AUC of replaced against original tokens; an MLM run has none of these.",
         [panel("replaced-token loss", "loss", lines(train, "disc_loss", "train", "-") +
                lines(held, "disc_loss", "held-out", "--o")),
          panel("replaced-token accuracy", "accuracy", lines(train, "disc_accuracy", "train", "-") +
                lines(held, "disc_accuracy", "held-out", "--o")),
          panel("held-out AUC", "AUC", lines(held, "disc_auc", "held-out", "--o"))]),
        ("heldout", "Held-out perplexity", "exp(held-out MLM loss), log scale.",
         [panel("perplexity", "perplexity", lines(held, "perplexity", "held-out", "--o"), logy=True)]),
        ("optim", "Optimizer", "Learning rate (warmup, then linear decay) and, when the run logs it, the gradient norm.",
         [panel("learning rate", "lr", lines(train, "lr", "", "-")),
          panel("gradient norm", "‖g‖", lines(train, "grad_norm", "", "-"))]),
        ("throughput", "Throughput", "Tokens per second over each logging interval.",
         [panel("tokens/s", "tokens/s", lines(train, "tokens_per_s", "", "-"))]),
    ]
    extra = sorted({k for run in runs for r in run.train for k, v in r.items()
                    if k not in KNOWN_TRAIN_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if extra:
        specs.append(("other", "Other logged values", "Every other number the run logs: " + ", ".join(extra) + ".",
                      [panel(key, key, lines(train, key, "", "-")) for key in extra]))
    figures = [_panels(plt, folder, f"pretrain_{name}", title, caption, panels)
               for name, title, caption, panels in specs]
    return [f for f in figures if f is not None]


def finetune_figures(plt, runs: list[Run], folder: Path) -> list[Figure]:
    by_epoch = all(steps_per_epoch(run) for run in runs)  # one x axis for every run
    xlabel = "epoch" if by_epoch else "step"

    def x(run: Run, records: list[dict]) -> list[float]:
        return finetune_x(run, records)[0] if by_epoch else [float(r["step"]) for r in records]

    def lines(key: str, held_out: bool = False):
        return [(run.name, *_series(records, key, x(run, records)), COLOURS[i % len(COLOURS)], "-o" if held_out else "-")
                for i, run in enumerate(runs) for records in [run.evals if held_out else run.train]]

    def panel(title, ylabel, line_list):
        return {"title": title, "ylabel": ylabel, "xlabel": xlabel, "lines": line_list}

    dev_keys = [k for k in ("accuracy", "f1", "mcc") if any(k in r for run in runs for r in run.evals)]
    specs = [
        ("loss", "Fine-tuning: training loss", "Cross-entropy on the training set, averaged over each logging "
         "interval.", [panel("train loss", "loss", lines("loss"))]),
        ("dev", "Fine-tuning: dev metrics per epoch", "Evaluated on the dev set after every epoch; the best epoch "
         "is the run's best/ checkpoint.", [panel(f"dev {key}", key, lines(key, held_out=True)) for key in dev_keys]),
        ("optim", "Fine-tuning: optimizer and speed", "Learning rate, gradient norm (when logged) and tokens/s.",
         [panel("learning rate", "lr", lines("lr")), panel("gradient norm", "‖g‖", lines("grad_norm")),
          panel("tokens/s", "tokens/s", lines("tokens_per_s"))]),
    ]
    figures = [_panels(plt, folder, f"finetune_{name}", title, caption, panels)
               for name, title, caption, panels in specs]
    return [f for f in figures if f is not None]


# ----------------------------------------------------------------------------- summary


def summarize(run: Run) -> dict[str, Any]:
    cfg = run.config
    train_cfg, optim, runtime = _section(cfg, "train"), _section(cfg, "optim"), _section(cfg, "runtime")
    last_train = run.train[-1] if run.train else {}
    last_step = int(max(r["step"] for r in run.records))
    finished = (run.path / "final").is_dir()
    row: dict[str, Any] = {"run": run.name, "path": str(run.path), "kind": run.kind}
    if run.kind == "pretrain-run":
        total = train_cfg.get("max_steps")
        model = _section(cfg, "model")
        row["model"] = _model_text(run.model, model.get("preset"))
        row["data"] = str(cfg.get("corpus", "")) + (f" (held-out: {cfg['eval_corpus']})" if cfg.get("eval_corpus") else "")
        tokens = tokens_axis(run)
        row["tokens_seen"] = (("≈ " if tokens[2] else "") + _count(tokens[1][-1])) if tokens[1] else "-"
        held = run.evals[-1] if run.evals else {}
        row["final"] = {k: held[k] for k in ("mlm_accuracy", "perplexity", "nsp_accuracy") if k in held}
        row["final"]["train_loss"] = last_train.get("loss")
    else:
        total = None
        per_epoch = steps_per_epoch(run)
        if per_epoch and train_cfg.get("epochs") and not train_cfg.get("max_steps"):
            total = math.ceil(float(train_cfg["epochs"]) * per_epoch)
        data = _section(cfg, "data")
        row["model"] = _model_text(run.model, None) + (f", from {cfg.get('init')}" if cfg.get("init") else "")
        row["data"] = f"train {data.get('train', '')}, dev {data.get('dev', '')}"
        row["tokens_seen"] = _count(last_train["tokens_seen"]) if "tokens_seen" in last_train else "-"
        best = max(run.evals, key=lambda r: r.get("accuracy", -1), default={})
        row["final"] = {f"best_dev_{k}": best[k] for k in ("accuracy", "f1", "mcc") if k in best}
        if best:
            row["final"]["best_epoch"] = best.get("epoch")
        row["final"]["train_loss"] = last_train.get("loss")
    row["status"] = ("finished" if finished else
                     f"running or stopped at step {last_step}" + (f" of {total}" if total else "") +
                     (" (last line still being written)" if run.partial_line else ""))
    row["steps"] = last_step
    row["config"] = ", ".join(f"{k} {v}" for k, v in (("batch", train_cfg.get("batch_size")), ("lr", optim.get("lr")),
                              ("max_steps", train_cfg.get("max_steps") or None),
                              ("epochs", train_cfg.get("epochs") if run.kind == "finetune-run" else None),
                              ("dtype", runtime.get("dtype")), ("seed", train_cfg.get("seed"))) if v is not None)
    row["wall_time"] = _wall_time(run)
    hardware = run.manifest.get("hardware") or {}
    row["hardware"] = (f"{hardware.get('device', '?')}: {hardware.get('name', '?')}, {hardware.get('threads', '?')} "
                       f"threads, torch {hardware.get('torch', '?')}" if hardware else "not recorded")
    return row


def _model_text(model: dict, preset: str | None) -> str:
    if model:
        text = f"L{model.get('num_layers')}-H{model.get('hidden_size')}, {model.get('num_heads')} heads"
        return f"{preset} ({text})" if preset else text
    return str(preset or "?")


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f}"


def _wall_time(run: Run) -> str:
    """From the manifest's creation (the run's start, or its last --resume) to the last metrics write."""
    try:
        start = datetime.datetime.fromisoformat(run.manifest["created"]).timestamp()
        end = os.path.getmtime(run.path / artifacts.METRICS)
    except (KeyError, ValueError, OSError):
        return "-"
    seconds = max(end - start, 0)
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m {int(seconds % 60):02d}s"


# ----------------------------------------------------------------------------- the page


STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
.note { color: #555; font-size: 0.9em; }
"""
COLUMNS = [("run", "run"), ("kind", "kind"), ("status", "status"), ("model", "model"), ("config", "config"),
           ("data", "data"), ("tokens_seen", "tokens seen"), ("wall_time", "wall time"), ("hardware", "hardware"),
           ("final", "final metrics")]


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "<br>".join(f"{html.escape(k)}: {_number(v)}" for k, v in value.items())
    return html.escape(str(value))


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return html.escape(str(value))


def render_html(runs: list[Run], rows: list[dict], figures: list[tuple[str, list[Figure]]]) -> str:
    names = ", ".join(run.name for run in runs)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>bertcli report: {html.escape(names)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>bertcli report: {html.escape(names)}</h1>",
             f'<p class="note">Made {created} by bertcli report from each run\'s metrics.jsonl. '
             f"Pretraining curves are drawn against tokens seen, fine-tuning curves against epochs; "
             f"several runs share each figure.</p>",
             "<h2>Summary</h2>", '<table id="summary">',
             "<thead><tr>" + "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS) + "</tr></thead>",
             "<tbody>"]
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{_cell(row.get(key, '-'))}</td>" for key, _ in COLUMNS) + "</tr>")
    parts += ["</tbody>", "</table>"]
    for heading, section in figures:
        if not section:
            continue
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for figure in section:
            data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
            parts.append(f'<figure id="{figure.name}"><img alt="{html.escape(figure.title)}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{html.escape(figure.title)}: '
                         f"{html.escape(figure.caption)}</figcaption></figure>")
    parts.append("<h2>Configs</h2>")
    for run in runs:
        text = yaml.safe_dump(run.config, sort_keys=False)
        parts.append(f"<details><summary>{html.escape(run.name)}: config.yaml</summary>"
                     f"<pre>{html.escape(text)}</pre></details>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def check_report_target(out: Path, runs: list[Run]) -> Path:
    """The report may live inside a run (RUN/report), but must not be a run or hold one."""
    target = out.resolve()
    for run in runs:
        source = run.path.resolve()
        if target == source or target in source.parents:
            raise UserError(f"{out}: --out is (or holds) the run {run.path}; choose a separate report folder, "
                            f"e.g. {run.path / 'report'}")
    return artifacts.check_output_target(out, "report")


def default_folder(run: Run) -> Path:
    """RUN/report; beside a run that is still in its staging folder, which is renamed when it ends."""
    if artifacts.is_live_staging(run.path):
        return run.path.parent / f"{run.path.name[1:].split('.tmp-')[0]}-report"
    return run.path / "report"


@writes_output
def run(run_paths: list[str | Path], out: str | Path | None = None) -> Path:
    if not run_paths:
        raise UserError("report: no run given; pass one or more run folders: bertcli report RUN [RUN ...]")
    runs = [load_run(p) for p in run_paths]
    plt = _pyplot()
    out = check_report_target(Path(out) if out else default_folder(runs[0]), runs)
    pretrain = [r for r in runs if r.kind == "pretrain-run"]
    finetune = [r for r in runs if r.kind == "finetune-run"]
    rows = [summarize(r) for r in runs]
    with artifacts.staged_folder(out) as tmp:
        sections = [("Pretraining", pretrain_figures(plt, pretrain, tmp) if pretrain else []),
                    ("Fine-tuning", finetune_figures(plt, finetune, tmp) if finetune else [])]
        (tmp / "report.html").write_text(render_html(runs, rows, sections), encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        artifacts.write_manifest(tmp, "report", {"runs": [str(r.path) for r in runs]},
                                 figures=[f.path.name for _, section in sections for f in section])
        count = sum(len(section) for _, section in sections)
    for run_ in runs:
        if run_.partial_line:
            console.print(f"[yellow]note:[/] {run_.path / artifacts.METRICS}: last line still being written; left out")
    console.print(f"report: {out / 'report.html'} ({count} figures, {len(runs)} run{'s' if len(runs) > 1 else ''})")
    print(out / "report.html")  # the page's path is the command's output: `xdg-open $(bertcli report RUN)`
    return out
