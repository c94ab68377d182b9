"""The house rules the code keeps: a setting is declared once (config.setting) and the CLI option,
its help and the loader's key all follow from it; transformers folders are named as such; no stage
imports another and module-level imports form no cycle."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bertcli.cli_options import cli_settings, config_command
from bertcli.config import load_config, setting
from conftest import ROOT, cli

SRC = ROOT / "src" / "bertcli"


# ----------------------------------------------------------------------------- one declaration


@dataclass(frozen=True)
class _Block:
    width: int = setting(64, flag="--width", help="Hidden width.")
    # The one line a new setting costs: it becomes --window, window in YAML, block.window for --set.
    window: int = setting(128, flag="--window", help="Sliding-window size of local attention layers.")


@dataclass(frozen=True)
class _Toy:
    out: str = setting("", flag="--out", help="Output folder.", show_default=False)
    block: _Block = setting(factory=_Block, help="The block.")


def _toy_app(seen: list) -> typer.Typer:
    app = typer.Typer()

    @config_command(app, "toy", _Toy)
    def toy(flags: dict, set_: list[str] = typer.Option([], "--set")):
        seen.append(load_config(_Toy, None, set_, flags))

    @app.command("other")
    def other():  # a second command keeps typer from folding "toy" into the app itself
        pass

    return app


def test_a_new_setting_is_a_flag_a_set_key_and_documented_help():
    seen: list = []
    app = _toy_app(seen)
    runner = CliRunner()
    result = runner.invoke(app, ["toy", "--help"], terminal_width=200)
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "--window" in help_text and "(block.window; default 128)" in help_text
    assert runner.invoke(app, ["toy", "--out", "x", "--window", "256"]).exit_code == 0
    assert seen[-1].block.window == 256 and seen[-1].block.width == 64 and seen[-1].out == "x"
    assert runner.invoke(app, ["toy", "--set", "block.window=32"]).exit_code == 0
    assert seen[-1].block.window == 32
    assert runner.invoke(app, ["toy"]).exit_code == 0
    assert seen[-1].block.window == 128  # not given: the declaration's default


def test_two_settings_with_one_flag_are_refused_at_declaration():
    @dataclass(frozen=True)
    class Clash:
        a: int = setting(1, flag="--size", help="a")
        b: int = setting(2, flag="--size", help="b")

    with pytest.raises(TypeError, match="--size is declared by both a and b"):
        cli_settings(Clash)


def test_every_command_option_comes_from_its_config_class():
    from bertcli.config import FinetuneConfig, PretrainConfig

    pretrain = {s.key for s in cli_settings(PretrainConfig)}
    assert {"model.preset", "train.max_steps", "out"} <= pretrain
    assert "train.epochs" not in pretrain  # PretrainConfig.CLI_EXCLUDE
    finetune = {s.meta["flag"]: s.default for s in cli_settings(FinetuneConfig)}
    assert finetune["--lr"] == pytest.approx(2e-5)  # finetune's own default, not pretrain's


def test_seed_list_that_is_not_integers_is_one_line_exit_2(tiny_world, capsys):
    code = cli("finetune", "--init", tiny_world.run, "--train", tiny_world.train, "--dev", tiny_world.dev,
               "--out", tiny_world.root / "never", "--seeds", "1,x")
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "--seeds '1,x': expected integers separated by commas" in err
    assert not (tiny_world.root / "never").exists()


# ----------------------------------------------------------------------------- transformers folders


@pytest.fixture
def transformers_folder(tmp_path) -> Path:
    folder = tmp_path / "bert-tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                             "do_lower_case": True}))
    (folder / "vocab.txt").write_text("".join(f"{t}\n" for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a")))
    return folder


@pytest.mark.parametrize("command", [
    ["embed", "{folder}", "{text}"],
    ["tokenize", "encode", "--tokenizer", "{folder}", "{text}"],
    ["finetune", "--init", "{folder}", "--train", "{text}", "--dev", "{text}", "--out", "{out}"],
    ["eval", "{folder}", "--data", "{text}"],
])
def test_transformers_folder_is_named_with_the_convert_command(transformers_folder, tmp_path, capsys, command):
    text = tmp_path / "in.txt"
    text.write_text("hello\n")
    args = [a.format(folder=transformers_folder, text=text, out=tmp_path / "out") for a in command]
    assert cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert "is a Hugging Face transformers folder" in err
    assert f"bertcli convert --from hf {transformers_folder} --out bert-tiny-bertcli" in err
    assert not (tmp_path / "out").exists()


def test_tokenizer_settings_file_has_its_own_name(tokenizer_dir, tmp_path):
    from bertcli.tokenizer import LEGACY_TOKENIZER_CONFIG, TOKENIZER_CONFIG, load_tokenizer

    assert TOKENIZER_CONFIG != LEGACY_TOKENIZER_CONFIG
    assert (tokenizer_dir / TOKENIZER_CONFIG).is_file() and not (tokenizer_dir / LEGACY_TOKENIZER_CONFIG).exists()
    # a folder written under the old name still loads, tokenises alike and keeps its fingerprint
    old = tmp_path / "old"
    old.mkdir()
    for path in tokenizer_dir.iterdir():
        name = LEGACY_TOKENIZER_CONFIG if path.name == TOKENIZER_CONFIG else path.name
        (old / name).write_bytes(path.read_bytes())
    new, legacy = load_tokenizer(tokenizer_dir), load_tokenizer(old)
    assert legacy.encode_batch(["the cat sat"]) == new.encode_batch(["the cat sat"])
    assert legacy.fingerprint() == new.fingerprint()
    legacy.copy_to(tmp_path / "copy")
    assert (tmp_path / "copy" / TOKENIZER_CONFIG).is_file()


# ----------------------------------------------------------------------------- import structure


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """bertcli modules imported by `path` (at module level only, or anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bertcli")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bertcli"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def test_no_stage_imports_another_stage():
    offenders = []
    for name, path in MODULES.items():
        if name.startswith("bertcli.stages."):
            others = {m for m in _imports(path, module_level_only=False)
                      if m.startswith("bertcli.stages") and m in MODULES and m != name and m != "bertcli.stages"}
            offenders += [f"{name} imports {m}" for m in sorted(others)]
    assert offenders == []


def test_module_level_imports_form_no_cycle():
    graph = {name: {m for m in _imports(path, module_level_only=True) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail
                              else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []
