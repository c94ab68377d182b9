"""Telling a Hugging Face transformers folder from a bertcli one, so that a user who hands bertcli
the folder `from_pretrained` reads is told to convert it, not that a bertcli folder is damaged.

Both kinds may hold a `tokenizer_config.json`: transformers' (tokenizer_class, model_max_length,
...) and bertcli's tokenizer settings (backend, files, special_ids), so the file's keys decide.
"""

from __future__ import annotations

import json
from pathlib import Path

from bertcli.errors import UserError

HF_CONFIG = "config.json"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
_BERTCLI_TOKENIZER_KEYS = ("backend", "special_ids")


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_transformers_folder(folder: str | Path) -> bool:
    """A model config with `model_type` or `architectures`, or a tokenizer_config.json in
    transformers' form (no bertcli tokenizer keys) beside a tokenizer.json or vocab.txt."""
    folder = Path(folder)
    config = _json(folder / HF_CONFIG)
    if config is not None and ("model_type" in config or "architectures" in config):
        return True
    settings = _json(folder / HF_TOKENIZER_CONFIG)
    if settings is None or any(key in settings for key in _BERTCLI_TOKENIZER_KEYS):
        return False
    return "tokenizer_class" in settings or (folder / "tokenizer.json").is_file() or (folder / "vocab.txt").is_file()


def refuse_transformers_folder(folder: str | Path, expected: str) -> None:
    """One line naming a transformers folder as such, with the command that converts it."""
    folder = Path(folder)
    if is_transformers_folder(folder):
        raise UserError(f"{folder}: is a Hugging Face transformers folder, not a bertcli {expected}; convert it "
                        f"first: bertcli convert --from hf {folder} --out {folder.name}-bertcli")
