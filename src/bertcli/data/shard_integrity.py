"""Before a run trains on a corpus: every shard file's bytes against the manifest's sha256, and
every token id inside the vocabulary.

A shard changed after the build (a bad copy, a disk error, an edit) would otherwise be trained on
without a word, and an id past the vocabulary would end in an index error deep inside the model.
Files are hashed in 1 MB blocks and ids checked through memory maps, so memory stays flat.

Verifying costs a read of the whole corpus, so it is done once: a record in bertcli's cache
folder ($BERTCLI_CACHE, else $XDG_CACHE_HOME/bertcli, else ~/.cache/bertcli; one file per corpus
folder, never inside the corpus, which is an input) keeps each file's size, modification time and
hash as verified, and a later run (a --resume, a second run on the same corpus) whose files still
have that size and time skips them. `verify_corpus: always` hashes everything again. Where the
cache cannot be written, every run verifies.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from bertcli import artifacts
from bertcli.cache import cache_dir
from bertcli.errors import UserError

TOKEN_FILES = ("input_ids", "mlm_labels")  # the shard files whose values are vocabulary ids
_ID_BLOCK = 1 << 22  # ids checked per slice of a memory map


def verify_split(folder: str | Path, split: str, vocab_size: int, mode: str = "once") -> dict:
    """Check the shards of `split`; return {"files": checked, "skipped": already verified, "seconds"}.
    Raises a one-line UserError naming the first damaged shard file."""
    folder = Path(folder)
    start = time.perf_counter()
    manifest = artifacts.require(folder, "corpus")
    record = _read_record(folder) if mode == "once" else {}
    checked = skipped = 0
    for entry in manifest["splits"][split]["shards"]:
        for name, expected in sorted(entry.get("sha256", {}).items()):
            path = folder / entry["path"] / name
            key = f"{entry['path']}/{name}"
            stat = path.stat()
            seen = record.get(key)
            if seen == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}:
                skipped += 1
                continue
            if artifacts.sha256_file(path) != expected:
                raise UserError(f"{path}: its bytes differ from the sha256 in {folder / artifacts.MANIFEST} (damaged "
                                f"or changed after the build); rebuild the corpus with `bertcli build-corpus`")
            if path.stem in TOKEN_FILES:
                _check_ids(path, vocab_size)
            record[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
            checked += 1
    if checked:
        _write_record(folder, record)
    return {"files": checked, "skipped": skipped, "seconds": time.perf_counter() - start}


def _check_ids(path: Path, vocab_size: int) -> None:
    ids = np.load(path, mmap_mode="r")
    for begin in range(0, len(ids), _ID_BLOCK):
        block = np.asarray(ids[begin:begin + _ID_BLOCK])
        if len(block) and (int(block.min()) < 0 or int(block.max()) >= vocab_size):
            bad = int(block.max()) if int(block.max()) >= vocab_size else int(block.min())
            raise UserError(f"{path}: token id {bad} is outside the corpus's vocabulary of {vocab_size}; the shard "
                            f"was not built with this corpus's tokenizer, rebuild it with `bertcli build-corpus`")


def record_path(folder: Path) -> Path:
    """The cache file of one corpus folder: named by its absolute path and its manifest's bytes, so
    a corpus rebuilt in the same place starts a new record."""
    digest = hashlib.sha256(str(folder.resolve()).encode() + b"\0" + (folder / artifacts.MANIFEST).read_bytes())
    return cache_dir() / "verified-corpora" / f"{digest.hexdigest()[:24]}.json"


def _read_record(folder: Path) -> dict:
    try:
        record = json.loads(record_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(folder: Path, record: dict) -> None:
    try:
        path = record_path(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        artifacts.atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # no writable cache: verified again next time, which costs time, not correctness
