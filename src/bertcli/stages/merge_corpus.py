"""`bertcli merge-corpus OUT PART...`: join the parts of a sharded build into one corpus folder.

Each part is a corpus folder made by `build-corpus --shard-index I --num-shards N` with the same
settings and tokenizer. The merged folder lists every part's shards (hard-linked where the file
system allows, else copied) under one manifest with summed statistics, so CorpusReader and
pretraining read it as one corpus. It is staged like any output: a failed merge leaves nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bertcli import artifacts
from bertcli.console import console
from bertcli.data.corpus_checks import corpus_warnings
from bertcli.errors import UserError
from bertcli.folder_lock import writes_output
from bertcli.data.corpus_stats import sum_statistics

# settings that may differ between the parts of one corpus
_PER_PART = ("shard_index", "num_shards", "workers", "progress", "out", "input")
# manifest entries that must agree
_SAME = ("tokenizer_fingerprint", "vocab_size", "max_seq_len", "max_predictions_per_seq", "objective",
         "masking", "masking_rule", "token_dtype", "num_shards")


@writes_output
def run(parts: list[str | Path], out: str | Path) -> Path:
    if not parts:
        raise UserError("merge-corpus: no parts given; pass the corpus folders of every --shard-index")
    parts = [Path(p) for p in parts]
    manifests = [artifacts.require(p, "corpus") for p in parts]
    out = artifacts.check_output_target(out, "corpus")
    first = manifests[0]
    config = _config(parts[0])
    for path, manifest in zip(parts[1:], manifests[1:]):
        for key in _SAME:
            if manifest.get(key) != first.get(key):
                raise UserError(f"{path}: {key} is {manifest.get(key)!r} but {parts[0]} has {first.get(key)!r}; "
                                f"merge only the parts of one build (same settings and tokenizer)")
        other = _config(path)
        differ = sorted(k for k in set(config) | set(other) if k not in _PER_PART and config.get(k) != other.get(k))
        if differ:
            raise UserError(f"{path}: built with other settings than {parts[0]} ({', '.join(differ)}); merge only "
                            f"the parts of one build")
    num_shards = first.get("num_shards", 1)
    indices = [m.get("shard_index", 0) for m in manifests]
    if sorted(indices) != list(range(num_shards)):
        missing = sorted(set(range(num_shards)) - set(indices))
        repeated = sorted({i for i in indices if indices.count(i) > 1})
        raise UserError(f"merge-corpus: the parts must be shard indices 0..{num_shards - 1} once each"
                        + (f"; missing {missing}" if missing else "") + (f"; repeated {repeated}" if repeated else ""))
    order = sorted(range(len(parts)), key=lambda i: indices[i])
    with artifacts.staged_folder(out) as folder:
        splits: dict[str, dict] = {}
        for i in order:
            for name, split in manifests[i]["splits"].items():
                entry = splits.setdefault(name, {"examples": 0, "shards": [], "parts": []})
                for shard in split["shards"]:
                    target = f"{name}/shard-{len(entry['shards']):05d}"
                    _link_tree(parts[i] / shard["path"], folder / target)
                    entry["shards"].append({**shard, "path": target})
                entry["examples"] += split["examples"]
                entry["parts"].append(split["statistics"])
        max_seq_len = first["max_seq_len"]
        for entry in splits.values():
            entry["statistics"] = sum_statistics(entry.pop("parts"), max_seq_len)
        totals = sum_statistics([e["statistics"] for e in splits.values()], max_seq_len)
        warnings = corpus_warnings(totals, config)
        shutil.copytree(parts[order[0]] / "tokenizer", folder / "tokenizer")
        extra = {k: v for k, v in first.items()
                 if k not in ("kind", "format_version", "bertcli_version", "created", "config_sha256", "inputs",
                              "splits", "statistics", "warnings", "shard_index", "num_shards", "input_files")}
        artifacts.write_manifest(folder, "corpus", {**config, "shard_index": None, "num_shards": None},
                                 splits=splits, statistics=totals, warnings=warnings, shard_index=0, num_shards=1,
                                 merged_from=[str(parts[i]) for i in order],
                                 input_files=[f for i in order for f in manifests[i].get("input_files", [])],
                                 **extra)
    console.print(f"merged {len(parts)} part(s) into {out}: "
                  + ", ".join(f"{name} {entry['examples']:,} examples in {len(entry['shards'])} shards"
                              for name, entry in splits.items()))
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    return out


def _config(folder: Path) -> dict:
    import yaml

    path = folder / artifacts.CONFIG
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        raise UserError(f"{path}: missing or not YAML; the corpus folder is damaged, rebuild it") from None


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a shard's files (no copy of the data), or copy them across file systems."""
    target.mkdir(parents=True)
    for file in source.iterdir():
        try:
            os.link(file, target / file.name)
        except OSError:
            shutil.copy2(file, target / file.name)
