from pathlib import Path

import pytest

from bertcli.config import (BuildCorpusConfig, ConfigError, FinetuneConfig, PretrainConfig, TokenizeConfig,
                            dump_yaml, from_dict, load_config)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_then_flags_then_set(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 3e-4\ntrain:\n  batch_size: 8\n")
    cfg = load_config(PretrainConfig, path, ["train.batch_size=16", "model.dropout=0.2"], {"train.seed": 7})
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.train.batch_size == 16 and cfg.train.seed == 7 and cfg.model.dropout == 0.2


def test_unknown_key_names_path_line_and_suggestion(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 1e-4\n  lrr: 2e-4\n")
    with pytest.raises(ConfigError) as err:
        load_config(PretrainConfig, path)
    assert str(err.value) == f"{path}:3: unknown key 'optim.lrr' (did you mean 'optim.lr'?)"


def test_unknown_key_from_set():
    with pytest.raises(ConfigError, match=r"unknown key 'train.max_step' \(did you mean 'train.max_steps'\?\)"):
        load_config(PretrainConfig, None, ["train.max_step=5"])


def test_wrong_type(tmp_path):
    path = write(tmp_path, "train:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r":2: train.batch_size: expected an integer, got 'lots'"):
        load_config(PretrainConfig, path)


def test_bad_value_and_choice():
    with pytest.raises(ConfigError, match=r"optim.lr: must be > 0, got -1.0"):
        load_config(PretrainConfig, None, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match=r"runtime.dtype: 'bf61' is not one of fp32, bf16, fp16 \(did you mean 'bf16'\?\)"):
        load_config(PretrainConfig, None, ["runtime.dtype=bf61"])
    with pytest.raises(ConfigError, match=r"train.grad_accum: must divide train.batch_size \(32\) evenly"):
        load_config(PretrainConfig, None, ["train.grad_accum=5"])


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"c.yaml:\d+: invalid YAML \(.*\); fix the syntax"):
        load_config(PretrainConfig, write(tmp_path, "train:\n  batch_size: [1\n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(PretrainConfig, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(PretrainConfig, None, ["optim.lr"])


def test_config_is_frozen_and_round_trips():
    cfg = load_config(FinetuneConfig, None, ["data.max_seq_len=64"])
    with pytest.raises(Exception):
        cfg.task = "other"
    import yaml
    assert from_dict(FinetuneConfig, yaml.safe_load(dump_yaml(cfg))) == cfg


@pytest.mark.parametrize("recipe", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_loads(recipe):
    cls = {"pretrain": PretrainConfig, "finetune": FinetuneConfig, "corpus": BuildCorpusConfig,
           "tokenize": TokenizeConfig}[recipe.parent.name]
    cfg = load_config(cls, recipe)
    assert cfg == load_config(cls, recipe)  # typed and deterministic


def test_partial_section_keeps_the_stage_defaults():
    cfg = load_config(FinetuneConfig, None, ["train.epochs=2", "optim.weight_decay=0.0"])
    assert cfg.train.max_steps == 0 and cfg.train.epochs == 2  # finetune counts epochs, not steps
    assert cfg.optim.lr == 2e-5 and cfg.optim.weight_decay == 0.0
