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
import time
from pathlib import Path
from typing import Any, Iterator

import yaml

from bertcli import __version__
from bertcli.disk_space import DiskFull, free_bytes, is_disk_full, tree_bytes
from bertcli.errors import UserError
from bertcli.folder_lock import lock_output
from bertcli.hf.folders import refuse_transformers_folder

MANIFEST = "manifest.json"
STEP_DIR = re.compile(r"^step-\d{8}$")  # a run's resumable checkpoints: steps/step-00000100/
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"  # a run's log, one JSON record per line (bertcli.metrics_log reads it)
FORMAT_VERSION = 1
# In every staging folder until the moment it is renamed into place; holds the writer's pid. A folder
# carrying it is never accepted as finished (a killed fine-tune's staging folder already has a
# manifest and best/), and the next run with the same --out deletes it once its writer is gone.
STAGING_MARKER = ".bertcli-staging"
STALE_UNMARKED_S = 600  # a staging folder without a marker (killed in its first instant) is stale after this

# kind -> the command that makes a folder of that kind (for "wrong folder" errors)
MAKERS = {
    "tokenizer": "bertcli tokenize train",
    "corpus": "bertcli build-corpus",
    "pretrain-run": "bertcli pretrain",
    "finetune-run": "bertcli finetune",
    "checkpoint": "bertcli pretrain / finetune / convert",
    "report": "bertcli report",
    "hf-export": "bertcli convert CKPT --to hf",
    "onnx-export": "bertcli convert CKPT --to onnx",
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
    refuse_staging(folder)
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: manifest is not valid JSON; the folder is damaged, rebuild it")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("kind"), str):
        raise UserError(f"{path}: manifest has no 'kind'; the folder is damaged or was not made by bertcli, "
                        f"rebuild it")
    return manifest


def refuse_staging(folder: str | Path) -> None:
    """A staging folder (or a checkpoint inside one) is unfinished work, whatever it holds."""
    folder = Path(folder)
    for candidate in (folder, folder.parent):
        if (candidate / STAGING_MARKER).exists():
            raise UserError(f"{folder}: unfinished output of a run that stopped or is still writing "
                            f"(a staging folder); use the finished folder, or rerun the command that made it")


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
        refuse_transformers_folder(folder, f"{label} folder")
        raise UserError(f"{folder}: no {MANIFEST}, so not a bertcli folder; expected a {label} folder "
                        f"made by `{MAKERS[kind]}`")
    if manifest.get("kind") != kind:
        raise UserError(f"{folder}: is a {manifest.get('kind')} folder, expected a {label} folder "
                        f"made by `{MAKERS[kind]}`")
    return manifest


@contextlib.contextmanager
def staged_folder(out: str | Path, needed_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out`, on failure it vanishes.

    A failure for lack of space becomes one DiskFull line (`needed_bytes`, when the caller knows
    the folder's size, goes into it)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        (tmp / STAGING_MARKER).write_text(f"{os.getpid()}\n", encoding="utf-8")
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; give it a normal folder's mode
        (tmp / STAGING_MARKER).unlink()
        replace_folder(tmp, out)
    except BaseException as exc:
        # (a DiskFull from a folder staged inside this one already names what filled up)
        full = isinstance(exc, Exception) and not isinstance(exc, UserError) and is_disk_full(exc)
        written = tree_bytes(tmp) if full else 0
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise DiskFull(out, written, free_bytes(out.parent), needed_bytes) from exc
        raise


def remove_stale_staging(out: Path) -> list[Path]:
    """Delete staging (`.NAME.tmp-*`) and set-aside (`.NAME.old-*`) folders of `out` left by a run that
    was killed (kill -9, power loss); those of a writer that is still alive are left alone."""
    return _remove_dead_staging(out.parent, glob_escape(out.name))


def remove_stale_step_staging(run: Path) -> list[Path]:
    """The staging folders of step checkpoints (`steps/.step-N.tmp-*`) that killed runs left: a
    resume continues from the last complete checkpoint and writes later steps, so without this the
    leftover of a step killed mid-save would stay for good."""
    steps = Path(run) / "steps"
    return _remove_dead_staging(steps, "step-*") if steps.is_dir() else []


def _remove_dead_staging(folder: Path, name_glob: str) -> list[Path]:
    removed = []
    for path in list(folder.glob(f".{name_glob}.tmp-*")) + list(folder.glob(f".{name_glob}.old-*")):
        if path.is_dir() and not _writer_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def live_staging(out: Path) -> Path | None:
    """The staging folder of `out` that a live process is writing now (a fine-tune in progress), if any."""
    out = Path(out)
    live = [p for p in out.parent.glob(f".{glob_escape(out.name)}.tmp-*")
            if p.is_dir() and (p / STAGING_MARKER).is_file() and _writer_alive(p)]
    return max(live, key=lambda p: p.stat().st_mtime) if live else None


def is_live_staging(folder: Path) -> bool:
    return (Path(folder) / STAGING_MARKER).is_file() and _writer_alive(Path(folder))


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _writer_alive(path: Path) -> bool:
    if path.name.rsplit(".old-", 1)[-1].isdigit() and ".old-" in path.name:
        return _pid_alive(int(path.name.rsplit(".old-", 1)[-1]))
    try:
        return _pid_alive(int((path / STAGING_MARKER).read_text(encoding="utf-8").strip()))
    except (OSError, ValueError):  # no marker yet: alive only if it was made a moment ago
        try:
            return time.time() - path.stat().st_mtime < STALE_UNMARKED_S
        except OSError:
            return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def prune_steps(run: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` step checkpoints (0 keeps all). The newest is the one a
    --resume continues from, so it is never deleted; call this only after a new one is in place."""
    steps = step_dirs(run)
    doomed = steps[:-keep_last] if keep_last > 0 else []
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


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


def step_dirs(run: Path) -> list[Path]:
    """A run's `steps/step-NNNNNNNN/` checkpoints, oldest first."""
    steps = Path(run) / "steps"
    return sorted(p for p in steps.iterdir() if STEP_DIR.match(p.name)) if steps.is_dir() else []


def check_output_target(out: str | Path, kind: str, flag: str = "--out", inputs=()) -> Path:
    """An output path must be new, empty, or a bertcli folder of the same `kind` (which a successful
    run replaces); never a file, the current folder, one of the `inputs`, or another kind of folder
    holding other work. Takes the folder's writer lock (bertcli.folder_lock) once the checks pass."""
    if not str(out) or Path(out).resolve() == Path.cwd().resolve():
        raise UserError(f"no output folder given; pass {flag} PATH (a new folder)")
    out = Path(out)
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{parent}: is a file, so {out} cannot be made inside it; choose another {flag}")
            break
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; {flag} must name a folder")
    if out.is_dir() and any(out.iterdir()):
        manifest = read_manifest(out)
        if manifest is None:
            raise UserError(f"{out}: exists and is not a bertcli folder; choose another {flag} or empty it")
        if manifest.get("kind") != kind:
            raise UserError(f"{out}: is a {manifest.get('kind')} folder; {flag} may only replace a {kind} "
                            f"folder, choose another {flag}")
    check_not_inside(out, list(inputs), flag)
    lock_output(out, flag)  # from here to the command's end no other bertcli writes `out`
    return out


def check_not_inside(out: str | Path, inputs: list[str | Path], flag: str = "--out") -> None:
    """An output folder must not be, hold or lie inside one of the inputs: replacing it would destroy
    what is being read."""
    target = Path(out).resolve()
    for item in inputs:
        if not item:
            continue
        source = Path(item).resolve()
        if target == source or target in source.parents or source in target.parents:
            raise UserError(f"{out}: {flag} is the input {item} (or holds or lies inside it); "
                            f"choose a separate output folder")
