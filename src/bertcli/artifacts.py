"""The folder contract between stages: file names, manifests, atomic writes, and checks on read.

Every stage writes its folder under a temporary name and renames it into place only when it is
complete, so a half-written folder never looks valid and a failed run never replaces a good one.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from bertcli import __version__
from bertcli.errors import UserError

MANIFEST = "manifest.json"
STEP_DIR = re.compile(r"^step-\d{8}$")  # a run's resumable checkpoints: steps/step-00000100/
CONFIG = "config.yaml"
FORMAT_VERSION = 1

# kind -> the command that makes a folder of that kind (for "wrong folder" errors)
MAKERS = {
    "tokenizer": "bertcli tokenize train",
    "corpus": "bertcli build-corpus",
    "pretrain-run": "bertcli pretrain",
    "finetune-run": "bertcli finetune",
    "checkpoint": "bertcli pretrain / finetune / convert",
}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_manifest(folder: Path, kind: str, config: dict[str, Any] | None = None,
                   inputs: list[Path] | None = None, **extra: Any) -> dict[str, Any]:
    config = config or {}
    config_text = yaml.safe_dump(config, sort_keys=False)
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "bertcli_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "inputs": [{"path": str(p), "sha256": sha256_file(Path(p))} for p in (inputs or []) if Path(p).is_file()],
        **extra,
    }
    atomic_write_text(Path(folder) / CONFIG, config_text)
    atomic_write_text(Path(folder) / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: manifest is not valid JSON; the folder is damaged, rebuild it")


def require(folder: str | Path, kind: str, what: str = "") -> dict[str, Any]:
    """The manifest of `folder`, which must exist and be of `kind`; otherwise a one-line error."""
    folder = Path(folder)
    label = what or kind
    if not folder.exists():
        raise UserError(f"{folder}: not found; expected a {label} folder made by `{MAKERS[kind]}`")
    if not folder.is_dir():
        raise UserError(f"{folder}: is a file; expected a {label} folder made by `{MAKERS[kind]}`")
    manifest = read_manifest(folder)
    if manifest is None:
        raise UserError(f"{folder}: no {MANIFEST}, so not a bertcli folder; expected a {label} folder "
                        f"made by `{MAKERS[kind]}`")
    if manifest.get("kind") != kind:
        raise UserError(f"{folder}: is a {manifest.get('kind')} folder, expected a {label} folder "
                        f"made by `{MAKERS[kind]}`")
    return manifest


@contextlib.contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out`, on failure it vanishes."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it a normal folder's mode
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_folder(new: Path, out: Path) -> None:
    """Move `new` to `out`; an old `out` is moved aside first and deleted only after the swap."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_staging_leftovers(folder: Path) -> None:
    """Delete the temporary folders a killed process left beside its outputs (`.NAME.tmp-*`)."""
    if Path(folder).is_dir():
        for leftover in Path(folder).glob(".*.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def step_dirs(run: Path) -> list[Path]:
    """A run's `steps/step-NNNNNNNN/` checkpoints, oldest first."""
    steps = Path(run) / "steps"
    return sorted(p for p in steps.iterdir() if STEP_DIR.match(p.name)) if steps.is_dir() else []


def check_output_target(out: str | Path, kind: str, flag: str = "--out") -> Path:
    """An output path must be new, empty, or a bertcli folder of the same `kind` (which a successful
    run replaces); never a file, the current folder, or another kind of folder holding other work."""
    if not str(out) or Path(out).resolve() == Path.cwd().resolve():
        raise UserError(f"no output folder given; pass {flag} PATH (a new folder)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; {flag} must name a folder")
    if out.is_dir() and any(out.iterdir()):
        manifest = read_manifest(out)
        if manifest is None:
            raise UserError(f"{out}: exists and is not a bertcli folder; choose another {flag} or empty it")
        if manifest.get("kind") != kind:
            raise UserError(f"{out}: is a {manifest.get('kind')} folder; {flag} may only replace a {kind} "
                            f"folder, choose another {flag}")
    return out
