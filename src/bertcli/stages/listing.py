"""`bertcli list presets` and `bertcli list recipes`: what there is to choose from.

Parameter counts are computed from the shapes (no model is built, so `list` stays instant even for
BERT-large); tests check the formula against a real BertEncoder.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bertcli.errors import UserError
from bertcli.model.config import BertConfig, preset_names, preset_shape

# BERT's uncased WordPiece vocabulary: the embedding share of a count depends on it.
REFERENCE_VOCAB = 30522
RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def encoder_parameters(config: BertConfig) -> int:
    """Parameters of BertEncoder (embeddings, layers, pooler), as in Hugging Face's BertModel."""
    H, I, L = config.hidden_size, config.intermediate_size, config.num_layers
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * H + 2 * H
    layer = (3 * H * H + 3 * H) + (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    pooler = H * H + H
    return embeddings + L * layer + pooler


def preset_rows(vocab_size: int = REFERENCE_VOCAB) -> list[dict]:
    rows = []
    for name in preset_names():
        shape = preset_shape(name)
        config = BertConfig.from_preset(name, vocab_size=vocab_size)
        total = encoder_parameters(config)
        embeddings = (vocab_size + config.max_position_embeddings + config.type_vocab_size + 2) * config.hidden_size
        rows.append({"preset": name, **shape, "parameters": total, "non_embedding_parameters": total - embeddings})
    return rows


def presets(as_json: bool = False) -> None:
    rows = preset_rows()
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(title=f"model presets (parameters with a {REFERENCE_VOCAB:,}-token vocabulary, 512 positions)")
    for column in ("preset", "layers", "hidden", "heads", "intermediate", "parameters", "without embeddings"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for row in rows:
        table.add_row(row["preset"], str(row["num_layers"]), str(row["hidden_size"]), str(row["num_heads"]),
                      str(row["intermediate_size"]), _millions(row["parameters"]),
                      _millions(row["non_embedding_parameters"]))
    Console().print(table)  # a listing is the command's data: stdout


def recipe_rows(root: Path = RECIPES) -> list[dict]:
    if not root.is_dir():
        raise UserError(f"{root}: recipes folder not found; recipes ship with the source tree "
                        f"(run from a checkout, or pass your own YAML files to the commands)")
    rows = []
    for path in sorted(root.glob("*/*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        about = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        rows.append({"stage": path.parent.name, "recipe": path.stem, "path": str(path), "about": about})
    return rows


def recipes(as_json: bool = False, root: Path = RECIPES) -> None:
    rows = recipe_rows(root)
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(title=f"recipes in {root}")
    for column in ("stage", "recipe", "about"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["stage"], row["recipe"], row["about"])
    Console().print(table)


def _millions(count: int) -> str:
    return f"{count / 1e6:,.1f} M"
