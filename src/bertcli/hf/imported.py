"""Writing a checkpoint imported from a transformers folder: its WordPiece tokenizer and the weights,
through a staging folder so that a failure leaves nothing (every importer ends here)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bertcli import artifacts
from bertcli.checkpoint import save_checkpoint
from bertcli.hf.tokenizer import import_wordpiece
from bertcli.model.config import BertConfig


def write_imported(hf_dir: Path, out: Path, state: dict, config: BertConfig, task: str, heads: list[str],
                   extra: dict, labels: list[str] | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="bertcli-hf-tok-") as tok_dir:
        tokenizer = import_wordpiece(hf_dir, Path(tok_dir), config.vocab_size)
        with artifacts.staged_folder(out) as tmp:
            save_checkpoint(tmp, state, config, task, heads, tokenizer, labels=labels, extra=extra,
                            run_config={"convert": {"from": "hf", "source": str(hf_dir)}})
