"""`bertcli inspect FOLDER`: describe any bertcli folder by its manifest's kind.

Human-readable text by default, one JSON object with --json, and for a corpus --dump N writes its
first N examples as JSON lines (input_ids, token_type_ids, mlm_positions, mlm_labels,
next_sentence_label, tokens), all on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import yaml
from rich.console import Console
from rich.table import Table

from bertcli import artifacts
from bertcli.data.corpus_checks import corpus_warnings
from bertcli.errors import UserError
from bertcli.metrics_log import last_record
from bertcli.tokenizer import load_tokenizer

SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog."
EXPECTED = "a tokenizer, corpus, pretrain-run, finetune-run or checkpoint folder"


def run(folder: str | Path, dump: int = 0, as_json: bool = False, split: str = "train", epoch: int = 0) -> None:
    folder = Path(folder)
    kind = _kind(folder)
    if dump < 0:
        raise UserError(f"--dump {dump}: give a number of examples >= 1")
    if dump:
        if kind != "corpus":
            raise UserError(f"{folder}: is a {kind} folder; --dump prints corpus examples, pass a folder made "
                            f"by `bertcli build-corpus`")
        _dump(folder, dump, split, epoch)
        return
    info = DESCRIBE.get(kind, _describe_other)(folder)
    if as_json:
        print(json.dumps(info))
    else:
        _show(info)


def _kind(folder: Path) -> str:
    if not folder.exists():
        raise UserError(f"{folder}: not found; expected {EXPECTED}")
    if not folder.is_dir():
        raise UserError(f"{folder}: is a file; expected {EXPECTED}")
    manifest = artifacts.read_manifest(folder)
    if manifest and manifest.get("kind"):
        return manifest["kind"]
    from bertcli.checkpoint import MODEL_JSON

    if (folder / MODEL_JSON).is_file():
        return "checkpoint"
    raise UserError(f"{folder}: no {artifacts.MANIFEST}, so not a bertcli folder; expected {EXPECTED}")


def _dump(folder: Path, count: int, split: str, epoch: int) -> None:
    from bertcli.data.shards import CorpusReader

    reader = CorpusReader(folder, split)
    tokenizer = load_tokenizer(folder / "tokenizer")
    out = sys.stdout
    for i in range(min(count, len(reader))):
        example = reader.example(i, epoch)
        example["tokens"] = tokenizer.pieces(example["input_ids"])
        out.write(json.dumps(example) + "\n")
    out.flush()


# ----------------------------------------------------------------------------- descriptions


def _describe_tokenizer(folder: Path) -> dict[str, Any]:
    tokenizer = load_tokenizer(folder)
    ids = tokenizer.encode(SAMPLE_TEXT)
    return {"kind": "tokenizer", "path": str(folder), "backend": tokenizer.backend,
            "vocab_size": tokenizer.vocab_size, "lowercase": tokenizer.lowercase,
            "special_ids": tokenizer.settings["special_ids"], "fingerprint": tokenizer.fingerprint(),
            "sample": {"text": SAMPLE_TEXT, "ids": ids, "pieces": tokenizer.pieces(ids)}}


def _describe_corpus(folder: Path) -> dict[str, Any]:
    manifest = artifacts.require(folder, "corpus")
    splits = {name: {"examples": entry["examples"], "shards": len(entry["shards"]), **_statistics(entry["statistics"])}
              for name, entry in manifest.get("splits", {}).items()}
    config = _config(folder)
    statistics = manifest.get("statistics", {})
    return {"kind": "corpus", "path": str(folder), "created": manifest.get("created"),
            "tokenizer_fingerprint": manifest.get("tokenizer_fingerprint"),
            "vocab_size": manifest.get("vocab_size"), "token_dtype": manifest.get("token_dtype"),
            "max_seq_len": manifest.get("max_seq_len"),
            "max_predictions_per_seq": manifest.get("max_predictions_per_seq"),
            "objective": manifest.get("objective", "mlm_nsp"), "masking": manifest.get("masking", "static"),
            "masking_rule": manifest.get("masking_rule"),
            "inputs": manifest.get("input_files", []), "splits": splits,
            "statistics": _statistics(statistics), "config": config,
            # recomputed, so that corpora built before a check existed are checked too
            "warnings": corpus_warnings(statistics, {**config, "max_seq_len": manifest.get("max_seq_len"),
                                                     "objective": manifest.get("objective", "mlm_nsp")})}


def _statistics(stats: dict) -> dict:
    """A corpus's statistics without the per-length counts (the histogram sums them up)."""
    return {key: value for key, value in stats.items() if key != "length_counts"}


def _describe_run(folder: Path) -> dict[str, Any]:
    manifest = artifacts.read_manifest(folder) or {}
    steps = [p.name for p in artifacts.step_dirs(folder)]
    info = {"kind": manifest.get("kind"), "path": str(folder), "created": manifest.get("created"),
            "steps": steps, "last_metrics": last_record(folder / artifacts.METRICS)}
    for name in ("best", "final"):
        if (folder / name).is_dir():
            info[name] = _describe_checkpoint(folder / name)
    return info


def _describe_checkpoint(folder: Path) -> dict[str, Any]:
    from safetensors import safe_open

    from bertcli.checkpoint import WEIGHTS, load_checkpoint

    checkpoint = load_checkpoint(folder)
    # Shapes come from the safetensors header; no tensor is read.
    with safe_open(str(checkpoint.folder / WEIGHTS), framework="numpy") as weights:
        sizes = {name: _product(weights.get_slice(name).get_shape()) for name in weights.keys()}
    tokenizer = checkpoint.tokenizer()
    return {"kind": "checkpoint", "path": str(checkpoint.folder), "task": checkpoint.task,
            "heads": checkpoint.heads, "labels": checkpoint.labels, "config": checkpoint.config.to_dict(),
            "parameters": sum(sizes.values()),
            "encoder_parameters": sum(n for name, n in sizes.items() if name.startswith("bert.")),
            "tokenizer": {"vocab_size": tokenizer.vocab_size, "lowercase": tokenizer.lowercase,
                          "fingerprint": tokenizer.fingerprint()}}


def _describe_other(folder: Path) -> dict[str, Any]:
    manifest = artifacts.read_manifest(folder) or {}
    return {"kind": manifest.get("kind"), "path": str(folder), "created": manifest.get("created"),
            "bertcli_version": manifest.get("bertcli_version"), "config": _config(folder)}


DESCRIBE: dict[str, Callable[[Path], dict[str, Any]]] = {
    "tokenizer": _describe_tokenizer,
    "corpus": _describe_corpus,
    "pretrain-run": _describe_run,
    "finetune-run": _describe_run,
    "checkpoint": _describe_checkpoint,
}


def _config(folder: Path) -> dict[str, Any]:
    path = folder / artifacts.CONFIG
    if not path.is_file():
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise UserError(f"{path}: not valid YAML; the folder is damaged, rebuild it") from None


def _product(shape) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


# ----------------------------------------------------------------------------- human output


def _show(info: dict[str, Any]) -> None:
    console = Console(highlight=False)
    console.print(f"[bold]{info['kind']}[/bold]  {info['path']}")
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in _rows(info, ""):
        if key not in ("kind", "path") and not key.startswith("warnings"):
            table.add_row(key, value)
    console.print(table)
    for warning in info.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _rows(value: Any, key: str):
    """(dotted key, text) for every leaf of a nested description."""
    if isinstance(value, dict) and set(value) == {"edges", "counts"}:  # a histogram: one line per bin
        edges, counts = value["edges"], value["counts"]
        width = max(max(counts, default=0), 1)
        for lo, hi, count in zip(edges, edges[1:], counts):
            yield f"{key}[{lo + (lo > 0)}-{hi}]", f"{count:>10,}  " + "#" * round(20 * count / width)
    elif isinstance(value, dict) and value:
        for name, item in value.items():
            yield from _rows(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, item in enumerate(value):  # one line per record (a corpus's input files)
            yield f"{key}[{i}]", "  ".join(f"{name}={_text(field)}" for name, field in item.items())
    else:
        yield key, _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_text(item) for item in value) if value else "-"
    return str(value)
