"""ELECTRA's replaced-token detection: the corruption, the losses, the engine (exact resume, eval,
report, fine-tuning), export to transformers' two ELECTRA models with parity, and the bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bertcli.hf import electra_weights
from bertcli.checkpoint import load_checkpoint, load_pretraining_model
from bertcli.labels import IGNORE_INDEX
from bertcli.model.config import BertConfig
from bertcli.model.electra import (ElectraForPretraining, generator_config, original_tokens, replace_tokens,
                                   sample_tokens)
from bertcli.train.metrics import roc_auc

from conftest import cli

SMALL = ["--preset", "tiny", "--set", "model.hidden_size=32", "--set", "model.num_layers=2",
         "--set", "model.num_heads=2", "--set", "model.intermediate_size=64",
         "--set", "model.max_position_embeddings=64", "--set", "runtime.progress=none",
         "--set", "runtime.threads=1", "--set", "optim.lr=1e-3", "--set", "train.log_every=1"]
ELECTRA = ["--objective", "electra", "--set", "electra.generator_fraction=0.5"]


def small_config(**overrides) -> BertConfig:
    return BertConfig(**{"vocab_size": 50, "hidden_size": 32, "num_layers": 2, "num_heads": 2,
                         "intermediate_size": 64, "max_position_embeddings": 16, "dropout": 0.0,
                         "attention_dropout": 0.0, **overrides})


# ----------------------------------------------------------------------------- the corruption


def test_sampled_tokens_replace_exactly_the_selected_positions():
    torch.manual_seed(0)
    B, T, P = 4, 12, 3
    original = torch.randint(5, 50, (B, T))
    positions = torch.tensor([[1, 4, 7], [2, 3, 0], [5, 0, 0], [0, 0, 0]])
    labels = original.gather(1, positions)
    labels[1, 2] = labels[2, 1:] = labels[3] = IGNORE_INDEX  # padded prediction slots
    masked = original.clone()
    real = labels != IGNORE_INDEX
    masked[torch.arange(B)[:, None].expand(B, P)[real], positions[real]] = 3  # [MASK]
    assert torch.equal(original_tokens(masked, positions, labels), original)

    sampled = torch.randint(5, 50, (B, P))
    sampled[0, 1] = original[0, 4]  # the generator guessed right: not a replacement
    corrupted, replaced = replace_tokens(original, positions, labels, sampled)
    selected = torch.zeros(B, T, dtype=torch.bool)
    selected[torch.arange(B)[:, None].expand(B, P)[real], positions[real]] = True
    assert torch.equal(corrupted[~selected], original[~selected])  # nothing else moved
    assert torch.equal(corrupted[selected], sampled[real])  # every selected slot holds its sample
    assert torch.equal(replaced, selected & (corrupted != original))
    assert not replaced[0, 4] and replaced.sum() == int((sampled[real] != labels[real]).sum())


def test_gumbel_sampling_follows_the_softmax():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1, 0.0]])).expand(20000, 4)
    counts = torch.bincount(sample_tokens(logits, torch.Generator().manual_seed(0)), minlength=4).float() / 20000
    assert torch.allclose(counts, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.015)
    again = sample_tokens(logits[:50], torch.Generator().manual_seed(1))
    assert torch.equal(again, sample_tokens(logits[:50], torch.Generator().manual_seed(1)))


def test_roc_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(size=500) + labels * 0.8
    scores[:50] = 0.25  # ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc(scores, np.zeros(500)) == 0.5


def test_generator_shape_and_its_errors():
    disc = small_config(hidden_size=256, num_heads=4, intermediate_size=1024)
    gen = generator_config(disc, 0.25)
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size, gen.num_layers) == (64, 1, 256, 2)
    with pytest.raises(ValueError, match=r"electra.generator_fraction 0.3 .* e\.g\. 0\.25, 0\.5, 1"):
        generator_config(disc, 0.3)
    with pytest.raises(ValueError, match=r"electra.generator_heads 3 does not divide .* 64; choose one of 1, 2, 4"):
        generator_config(disc, 0.25, heads=3)


def test_the_discriminator_loss_does_not_reach_the_generator():
    torch.manual_seed(0)
    config = small_config()
    model = ElectraForPretraining(config, generator_config(config, 0.5))
    ids = torch.randint(5, 50, (3, 10))
    positions = torch.tensor([[1, 2], [3, 0], [4, 5]])
    labels = ids.gather(1, positions)
    labels[1, 1] = IGNORE_INDEX
    out = model(ids, None, None, positions, labels)
    assert set(out) >= {"loss", "mlm_loss", "disc_loss", "disc_accuracy"}
    assert torch.isclose(out["loss"], out["mlm_loss"] + 50.0 * out["disc_loss"])
    out["disc_loss"].backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(p.grad is None for p in model.generator_mlm.parameters())
    assert model.bert.embeddings.word.weight.grad is not None  # shared: the discriminator trains them


# ----------------------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def mlm_corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    out = tmp_path_factory.mktemp("electra") / "corpus"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 1, "--objective", "mlm", "--masking", "dynamic",
               "--set", "eval_fraction=0.2") == 0
    return out


@pytest.fixture(scope="module")
def electra_run(tmp_path_factory, mlm_corpus) -> Path:
    out = tmp_path_factory.mktemp("electra-run") / "run"
    assert cli("pretrain", "--corpus", mlm_corpus, "--out", out, *SMALL, *ELECTRA, "--set", "train.max_steps=6",
               "--set", "train.batch_size=8", "--set", "train.eval_every=3", "--set", "train.eval_examples=16",
               "--set", "train.save_every=3") == 0
    return out


def rows(run: Path, split: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def test_an_electra_run_logs_and_evaluates_replaced_token_detection(electra_run, mlm_corpus, capsys):
    train = rows(electra_run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    for r in train:
        assert r["loss"] == pytest.approx(r["mlm_loss"] + 50 * r["disc_loss"], rel=1e-5)
        assert 0.0 <= r["disc_accuracy"] <= 1.0 and 0.0 < r["replaced_fraction"] < 0.2
    held = rows(electra_run, "eval")
    assert [r["step"] for r in held] == [3, 6]
    assert {"mlm_accuracy", "disc_loss", "disc_accuracy", "disc_auc"} <= set(held[-1])
    ckpt = load_checkpoint(electra_run / "final")
    assert ckpt.heads == ["generator", "generator_mlm", "discriminator"]
    assert ckpt.extra["generator"]["hidden_size"] == 16
    # `bertcli eval` on the corpus gives the run's own last held-out figures (the same seeded samples)
    capsys.readouterr()
    assert cli("eval", electra_run / "final", "--data", mlm_corpus, "--max-examples", 16, "--json") == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["disc_auc"] == pytest.approx(held[-1]["disc_auc"], abs=1e-6)
    assert result["mlm_accuracy"] == pytest.approx(held[-1]["mlm_accuracy"], abs=1e-6)


def test_an_electra_run_resumes_exactly(mlm_corpus, tmp_path):
    common = [*SMALL, *ELECTRA, "--set", "train.batch_size=8", "--set", "train.save_every=3",
              "--set", "train.max_steps=6", "--set", "train.keep_last=0"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli("pretrain", "--corpus", mlm_corpus, "--out", straight, *common) == 0
    # what a run killed after step 4 leaves: the step-3 checkpoint, no final/, metrics past step 3
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "steps" / "step-00000006")
    assert cli("pretrain", "--out", resumed, "--resume") == 0
    a = load_file(str(straight / "final" / "model.safetensors"))
    b = load_file(str(resumed / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    keep = ("step", "loss", "mlm_loss", "disc_loss", "disc_accuracy")
    assert [{k: r[k] for k in keep} for r in rows(resumed, "train")] == \
           [{k: r[k] for k in keep} for r in rows(straight, "train")]


def test_fine_tuning_reads_the_discriminator(electra_run, tiny_world, tmp_path):
    out = tmp_path / "ft"
    assert cli("finetune", "--init", electra_run, "--train", tiny_world.train, "--dev", tiny_world.dev, "--out", out,
               "--epochs", 1, "--batch-size", 16, "--max-seq-len", 32, "--set", "runtime.progress=none") == 0
    pretrained = load_checkpoint(electra_run / "final").state_dict()
    start = load_checkpoint(out / "final").state_dict()
    assert start.keys() >= {k for k in pretrained if k.startswith("bert.")}
    assert not any(k.startswith(("generator", "discriminator")) for k in start)


# ----------------------------------------------------------------------------- transformers


def test_export_matches_transformers_electra_and_imports_back(electra_run, tmp_path):
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "hf"
    assert cli("convert", electra_run / "final", "--to", "hf", "--out", out) == 0
    assert (out / "generator" / "config.json").is_file()
    ckpt = load_checkpoint(electra_run / "final")
    ours = load_pretraining_model(ckpt).eval()
    disc = transformers.ElectraForPreTraining.from_pretrained(out).eval()
    gen = transformers.ElectraForMaskedLM.from_pretrained(out / "generator").eval()
    torch.manual_seed(0)
    ids = torch.randint(5, ckpt.config.vocab_size, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 14:] = 0
    ids[1, 14:] = 0
    types = torch.zeros_like(ids)
    types[:, 10:] = 1
    with torch.no_grad():
        hidden, _ = ours.bert(ids, types, mask)
        our_disc = ours.discriminator(hidden)
        their_disc = disc(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        embedded = ours.bert.embeddings(ids, types)
        our_gen = ours.generator_mlm(ours.generator(embedded, mask, None), ours.bert.embeddings.word.weight)
        their_gen = gen(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    real = mask.bool()
    assert float((our_disc - their_disc)[real].abs().max()) < 1e-5
    assert float((our_gen - their_gen)[real].abs().max()) < 1e-5

    # import back (the tensors; this test's tokenizer is a SentencePiece one, which import refuses)
    disc_config = electra_weights.config_from_hf(json.loads((out / "config.json").read_text()))
    gen_config = electra_weights.config_from_hf(json.loads((out / "generator" / "config.json").read_text()))
    assert gen_config == BertConfig.from_dict(ckpt.extra["generator"]) and disc_config == ckpt.config
    state = electra_weights.states_from_hf(load_file(str(out / "model.safetensors")),
                                           load_file(str(out / "generator" / "model.safetensors")),
                                           disc_config, gen_config)
    original = ckpt.state_dict()
    assert set(original) - set(state) == {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # ELECTRA has none
    assert all(torch.equal(state[k], original[k]) for k in state)

# ----------------------------------------------------------------------------- bad input


def test_crossing_objectives_is_one_clear_line(electra_run, mlm_corpus, tiny_world, tmp_path, capsys):
    capsys.readouterr()
    assert cli("pretrain", "--corpus", mlm_corpus, "--out", tmp_path / "a", *SMALL, "--init-from", electra_run,
               "--set", "train.max_steps=1") == 2
    assert "pretrained with objective electra, this run has objective mlm; set --objective electra" \
        in capsys.readouterr().err
    assert cli("pretrain", "--corpus", tiny_world.corpus, "--out", tmp_path / "b", *ELECTRA, "--init-from",
               tiny_world.run, "--set", "train.max_steps=1", "--set", "runtime.progress=none") == 2
    assert "pretrained with objective mlm, this run has objective electra" in capsys.readouterr().err
    assert cli("pretrain", "--out", electra_run, "--resume", "--objective", "mlm") == 2
    assert "--resume: objective was 'electra'" in capsys.readouterr().err
    assert cli("pretrain", "--corpus", mlm_corpus, "--out", tmp_path / "c", *SMALL, "--objective", "electra",
               "--set", "electra.generator_fraction=0.3", "--set", "train.max_steps=1") == 2
    err = capsys.readouterr().err
    assert "electra.generator_fraction 0.3" in err and "e.g. 0.25, 0.5, 1" in err
    assert not (tmp_path / "c" / "final").exists()
