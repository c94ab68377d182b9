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
    """Parameters of BertEncoder (embeddings, layers, pooler), as in Hugging Face's BertModel for
    BERT's block; the modern block's settings (no position table, GeGLU, no biases, a final norm
    and none before the first layer's attention) change the terms they touch."""
    H, I, L = config.hidden_size, config.intermediate_size, config.num_layers
    b = 1 if config.bias else 0
    norm = (1 + b) * H
    positions = config.max_position_embeddings if config.position == "learned" else 0
    embeddings = (config.vocab_size + positions + config.type_vocab_size) * H + norm
    ffn_in = 2 * I if config.ffn == "geglu" else I
    layer = (3 * H * H + 3 * b * H) + (H * H + b * H) + (H * ffn_in + b * ffn_in) + (I * H + b * H) + 2 * norm
    pre = config.norm == "pre"
    norms_absent = norm if pre else 0  # layer 0 has no attention norm in a pre-LN block
    final_norm = norm if pre else 0
    pooler = H * H + b * H
    return embeddings + L * layer - norms_absent + final_norm + pooler


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
