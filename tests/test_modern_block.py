"""The modern encoder block (ModernBERT's settings, one at a time): its pieces, the engine with it
(pretrain, resume, fine-tune, ELECTRA), export to transformers' ModernBERT with parity and back,
and the bad inputs (unexportable mixes, crossing blocks)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertcli.checkpoint import load_checkpoint, load_pretraining_model
from bertcli.hf import modernbert_weights
from bertcli.model.config import BertConfig, geglu_width
from bertcli.model.encoder import BertEncoder, LayerMasks
from bertcli.model.heads import BertForPretraining
from bertcli.stages.listing import encoder_parameters

from conftest import cli

SMALL = ["--preset", "tiny", "--set", "model.hidden_size=32", "--set", "model.num_layers=3",
         "--set", "model.num_heads=2", "--set", "model.max_position_embeddings=64",
         "--set", "runtime.progress=none", "--set", "runtime.threads=1", "--set", "optim.lr=1e-3",
         "--set", "train.log_every=1"]
# A window of 16 in a 64-token corpus, so that the sliding-window layers really are local.
MODERN = ["--block", "modern", "--set", "model.local_window=16", "--set", "model.global_every=2"]


def modern_config(**overrides) -> BertConfig:
    return BertConfig.from_preset("tiny", block="modern", **{"vocab_size": 60, "hidden_size": 32, "num_heads": 2,
                                                             "num_layers": 3, "max_position_embeddings": 64,
                                                             "local_window": 8, "global_every": 2, **overrides})


# ----------------------------------------------------------------------------- the block's pieces


def test_the_modern_block_sets_modernberts_settings_and_bert_stays_the_default():
    bert = BertConfig.from_preset("mini")
    assert (bert.norm, bert.position, bert.ffn, bert.bias, bert.local_window, bert.intermediate_size) == \
           ("post", "learned", "gelu", True, 0, 1024)
    modern = BertConfig.from_preset("mini", block="modern")
    assert (modern.norm, modern.position, modern.ffn, modern.bias, modern.local_window, modern.global_every) == \
           ("pre", "rotary", "geglu", False, 128, 3)
    assert (modern.rope_theta, modern.local_rope_theta, modern.type_vocab_size, modern.layer_norm_eps) == \
           (160000.0, 10000.0, 0, 1e-5)
    # GeGLU's two input halves at 2/3 of 4H keep the feed-forward's FLOPs at most BERT's
    assert [geglu_width(h) for h in (128, 256, 512, 768)] == [320, 672, 1344, 2048]
    assert modern.intermediate_size == 672 and 3 * modern.intermediate_size <= 2 * bert.intermediate_size
    assert BertConfig.from_preset("mini", block="modern", intermediate_size=500).intermediate_size == 500
    assert [modern_config().is_global(i) for i in range(3)] == [True, False, True]
    # a model.json written before the block settings existed reads as BERT
    old = {k: v for k, v in bert.to_dict().items() if k in ("vocab_size", "hidden_size", "num_layers", "num_heads")}
    assert BertConfig.from_dict(old).block_settings() == BertConfig().block_settings()
    with pytest.raises(ValueError, match="model.norm must be one of post, pre"):
        BertConfig(norm="sandwich")
    with pytest.raises(ValueError, match="model.local_window must be an even number"):
        BertConfig(local_window=7)


def test_parameter_count_formula_matches_the_modules():
    for config in (modern_config(), modern_config(bias=True), modern_config(norm="post", ffn="gelu")):
        assert encoder_parameters(config) == sum(p.numel() for p in BertEncoder(config).parameters())
    encoder = BertEncoder(modern_config())
    assert encoder.embeddings.position is None and encoder.embeddings.token_type is None
    assert isinstance(encoder.layers[0].attention_norm, torch.nn.Identity) and encoder.final_norm is not None
    assert all(m.bias is None for m in encoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm)))


def test_sliding_window_masks_keep_the_band_and_padding():
    mask = torch.tensor([[1] * 10, [1] * 4 + [0] * 6])
    masks = LayerMasks(mask, 10, 4, torch.device("cpu"))
    band = masks.local  # (B, 1, T, T)
    i, j = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    assert torch.equal(band[0, 0], (i - j).abs() <= 2)
    real = mask[1].bool()
    expected = ((i - j).abs() <= 2) & real[None, :] | torch.eye(10, dtype=torch.bool)  # padded rows see themselves
    assert torch.equal(band[1, 0], expected)
    assert masks.padding.shape == (2, 1, 1, 10)
    assert LayerMasks(None, 3, 4, torch.device("cpu")).local is None  # the band covers a short sequence


def test_the_rows_shortcut_equals_the_full_forward_in_the_modern_block():
    torch.manual_seed(0)
    model = BertForPretraining(modern_config(dropout=0.0, attention_dropout=0.0)).eval()
    ids = torch.randint(5, 60, (3, 40))
    mask = torch.ones(3, 40, dtype=torch.long)
    mask[1, 25:] = 0
    mask[2, 6:] = 0  # padded positions far past every real token: their rows must not go NaN
    rows = torch.tensor([[0, 3, 17, 30], [0, 1, 2, 20], [0, 5, 1, 2]])
    with torch.no_grad():
        full, _ = model.bert(ids, None, mask)
        part, _ = model.bert(ids, None, mask, rows)
    assert not torch.isnan(full).any()
    gathered = full.gather(1, rows[..., None].expand(-1, -1, full.shape[-1]))
    assert float((part - gathered).abs().max()) < 1e-6
    states = list(model.bert.layer_states(ids, None, mask))
    assert len(states) == 4 and torch.allclose(states[-1], full)  # the last state is after the final norm


def test_rotary_attention_depends_on_relative_offsets_only():
    """Prepend a masked-out token and every position moves by one: queries and keys turn by the same
    extra angle, so their products, and the attention's output, stay as they were."""
    torch.manual_seed(0)
    attention = BertEncoder(modern_config(local_window=0)).eval().layers[1].attention
    x = torch.randn(1, 12, 32)
    moved = torch.cat([torch.randn(1, 1, 32), x], dim=1)
    mask = torch.ones(1, 13, dtype=torch.bool)
    mask[0, 0] = False
    with torch.no_grad():
        plain = attention(x, None)
        shifted = attention(moved, mask[:, None, None, :])[:, 1:]
        at_rows = attention(x, None, x[:, [4, 7]], torch.tensor([[4, 7]]))
    assert float((shifted - plain).abs().max()) < 1e-5
    assert float((at_rows - plain[:, [4, 7]]).abs().max()) < 1e-6
    rotary = attention.rotary
    q = torch.randn(1, 12, 2, 16)  # (B, T, N, D)
    assert torch.allclose(rotary(q, None).norm(dim=-1), q.norm(dim=-1), atol=1e-5)  # a rotation keeps lengths
    # the hand-written backward is the true gradient (checked in fp64), at all positions and at rows
    q = torch.randn(2, 5, 2, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: rotary(t, None), (q,))
    assert torch.autograd.gradcheck(lambda t: rotary(t, torch.tensor([[3, 9, 1, 0, 2], [5, 5, 7, 8, 60]])), (q,))


def test_pre_ln_out_projections_start_scaled_down():
    torch.manual_seed(0)
    model = BertForPretraining(modern_config(num_layers=8, hidden_size=128, num_heads=2))
    layer = model.bert.layers[3]
    assert float(layer.attention.qkv.weight.detach().std()) == pytest.approx(0.02 * 0.88, rel=0.1)  # trunc normal at 2 std
    assert float(layer.ffn_out.weight.detach().std()) == pytest.approx(0.02 * 0.88 / 4, rel=0.1)  # / sqrt(2 x 8)


# ----------------------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer_dir, text_files) -> Path:
    out = tmp_path_factory.mktemp("modern") / "corpus"
    assert cli("build-corpus", "--input", *text_files, "--tokenizer", tokenizer_dir, "--out", out,
               "--max-seq-len", 64, "--dupe-factor", 1, "--objective", "mlm", "--masking", "dynamic",
               "--set", "eval_fraction=0.2") == 0
    return out


@pytest.fixture(scope="module")
def modern_run(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("modern-run") / "run"
    assert cli("pretrain", "--corpus", corpus, "--out", out, *SMALL, *MODERN, "--set", "train.max_steps=6",
               "--set", "train.batch_size=8", "--set", "train.save_every=3", "--set", "train.keep_last=0",
               "--set", "train.eval_examples=16") == 0
    return out


def rows(run: Path, split: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


def test_a_modern_run_trains_and_records_its_block(modern_run):
    train = rows(modern_run, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    assert train[-1]["loss"] < train[0]["loss"]
    config = load_checkpoint(modern_run / "final").config
    assert (config.norm, config.position, config.ffn, config.bias, config.local_window, config.global_every,
            config.type_vocab_size) == ("pre", "rotary", "geglu", False, 16, 2, 0)
    state = load_checkpoint(modern_run / "final").state_dict()
    assert "bert.final_norm.weight" in state and not any("position" in k or "token_type" in k for k in state)


def test_a_modern_run_resumes_exactly(modern_run, tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(modern_run, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "steps" / "step-00000006")
    assert cli("pretrain", "--out", resumed, "--resume") == 0
    a = load_file(str(modern_run / "final" / "model.safetensors"))
    b = load_file(str(resumed / "final" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tuning_keeps_the_modern_block(modern_run, tiny_world, tmp_path):
    out = tmp_path / "ft"
    assert cli("finetune", "--init", modern_run, "--train", tiny_world.train, "--dev", tiny_world.dev, "--out", out,
               "--epochs", 1, "--batch-size", 16, "--max-seq-len", 32, "--set", "runtime.progress=none") == 0
    tuned = load_checkpoint(out / "final")
    assert tuned.config.block_settings() == load_checkpoint(modern_run / "final").config.block_settings()


def test_electra_with_the_modern_block_exports_the_discriminator_as_modernbertmodel(corpus, tmp_path):
    transformers = pytest.importorskip("transformers")
    run = tmp_path / "electra"
    assert cli("pretrain", "--corpus", corpus, "--out", run, *SMALL, *MODERN, "--objective", "electra",
               "--set", "electra.generator_fraction=0.5", "--set", "train.max_steps=2",
               "--set", "train.batch_size=8") == 0
    ckpt = load_checkpoint(run / "final")
    assert BertConfig.from_dict(ckpt.extra["generator"]).norm == "pre"  # the generator has the same block
    assert cli("convert", run / "final", "--to", "hf", "--out", tmp_path / "hf") == 0
    theirs = transformers.ModernBertModel.from_pretrained(tmp_path / "hf").eval()
    ours = load_pretraining_model(ckpt).eval()
    ids, mask = _inputs(ckpt.config.vocab_size)
    with torch.no_grad():
        hidden, _ = ours.bert(ids, None, mask)
        their_hidden = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
    assert float((hidden - their_hidden)[mask.bool()].abs().max()) < 1e-5


# ----------------------------------------------------------------------------- transformers


def _inputs(vocab_size: int):
    torch.manual_seed(0)
    ids = torch.randint(5, vocab_size, (3, 50))
    mask = torch.ones(3, 50, dtype=torch.long)
    mask[1, 30:] = 0
    ids[1, 30:] = 0
    return ids, mask


def test_export_matches_transformers_modernbert_and_imports_back(modern_run, tmp_path):
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "hf"
    assert cli("convert", modern_run / "final", "--to", "hf", "--out", out) == 0
    hf_config = json.loads((out / "config.json").read_text())
    assert hf_config["architectures"] == ["ModernBertForMaskedLM"]
    assert hf_config["layer_types"] == ["full_attention", "sliding_attention", "full_attention"]
    ckpt = load_checkpoint(modern_run / "final")
    ours = load_pretraining_model(ckpt).eval()
    theirs = transformers.ModernBertForMaskedLM.from_pretrained(out).eval()
    ids, mask = _inputs(ckpt.config.vocab_size)
    with torch.no_grad():
        our_logits = ours.mlm_logits_all(ids, None, mask)
        their_logits = theirs(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert float((our_logits - their_logits)[real].abs().max()) < 1e-5
    # the tokenizer gives what ModernBertModel.forward takes: no token_type_ids
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert set(tokenizer("a short sentence")) == {"input_ids", "attention_mask"}

    # import back (the tensors; this test's tokenizer is a SentencePiece one, which import refuses)
    config = modernbert_weights.config_from_hf(hf_config)
    assert config == dataclasses.replace(ckpt.config, dropout=config.dropout, attention_dropout=config.attention_dropout)
    state, task = modernbert_weights.state_from_hf(load_file(str(out / "model.safetensors")), config)
    original = ckpt.state_dict()
    assert task == "mlm"
    # no pooler in ModernBERT (and no bias), and an MLM-only run's NSP head is untrained
    assert set(original) - set(state) == {"bert.pooler.dense.weight", "nsp.linear.weight", "nsp.linear.bias"}
    assert all(torch.equal(state[k], original[k]) for k in state)


def test_modernbert_config_import_refuses_what_bertcli_cannot_compute():
    base = modernbert_weights.config_to_hf(modern_config(), "mlm", {"[PAD]": 0, "[CLS]": 2, "[SEP]": 3})
    with pytest.raises(ValueError, match="hidden_activation is 'silu'"):
        modernbert_weights.config_from_hf({**base, "hidden_activation": "silu"})
    with pytest.raises(ValueError, match="biases differ between layers"):
        modernbert_weights.config_from_hf({**base, "norm_bias": True})
    with pytest.raises(ValueError, match="not full attention every n-th layer"):
        modernbert_weights.config_from_hf({**base, "layer_types": ["sliding_attention", "full_attention",
                                                                   "full_attention"]})
    legacy = {k: v for k, v in base.items() if k not in ("layer_types", "rope_parameters")}
    legacy.update(global_attn_every_n_layers=2, global_rope_theta=160000.0, local_rope_theta=10000.0)
    assert modernbert_weights.config_from_hf(legacy) == modernbert_weights.config_from_hf(base)


# ----------------------------------------------------------------------------- bad input


def test_an_unexportable_mix_names_its_settings_and_writes_nothing(corpus, tmp_path, capsys):
    run = tmp_path / "mixed"
    assert cli("pretrain", "--corpus", corpus, "--out", run, *SMALL, *MODERN, "--set", "model.type_vocab_size=2",
               "--set", "train.max_steps=1", "--set", "train.batch_size=8") == 0
    capsys.readouterr()
    assert cli("convert", run / "final", "--to", "hf", "--out", tmp_path / "hf") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "as ModernBERT model.type_vocab_size=2 (ModernBERT has no segment embeddings)" in err
    assert "as BERT model.norm=pre (BERT's is post)" in err and "model.ffn=geglu" in err
    assert not (tmp_path / "hf").exists()
    assert cli("convert", run / "final", "--to", "sentence-transformers", "--out", tmp_path / "st") == 2
    assert "writes a BertModel, which this block is not" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()


def test_crossing_blocks_is_one_clear_line(modern_run, corpus, tiny_world, tmp_path, capsys):
    capsys.readouterr()
    assert cli("pretrain", "--corpus", tiny_world.corpus, "--out", tmp_path / "a", "--block", "modern",
               "--init-from", tiny_world.run, "--set", "train.max_steps=1", "--set", "runtime.progress=none") == 2
    err = capsys.readouterr().err
    assert "another block than the checkpoint's: model.norm='pre' (the checkpoint's is 'post')" in err
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "b", "--block", "bert", "--init-from", modern_run,
               "--set", "train.max_steps=1", "--set", "runtime.progress=none") == 2
    assert "model.position='learned' (the checkpoint's is 'rotary')" in capsys.readouterr().err
    assert cli("pretrain", "--out", modern_run, "--resume", "--block", "bert") == 2
    assert "--resume: model.block was 'modern'" in capsys.readouterr().err
    # continuing a modern checkpoint without naming the block keeps its block
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "c", "--init-from", modern_run,
               "--set", "train.max_steps=1", "--set", "train.batch_size=8", "--set", "runtime.progress=none") == 0
    assert load_checkpoint(tmp_path / "c" / "final").config.norm == "pre"


def test_bad_block_settings_name_the_key(corpus, tmp_path, capsys):
    capsys.readouterr()
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "a", *SMALL, "--set", "model.local_window=7",
               "--set", "train.max_steps=1") == 2
    assert "model.local_window: must be an even number >= 0" in capsys.readouterr().err
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "b", *SMALL, "--block", "modrn",
               "--set", "train.max_steps=1") == 2
    assert "did you mean 'modern'" in capsys.readouterr().err
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "c", *SMALL, "--block", "modern",
               "--set", "model.num_heads=3", "--set", "model.hidden_size=33", "--set", "train.max_steps=1") == 2
    assert "model: position=rotary needs an even head size (hidden_size / num_heads), got 33 / 3 = 11" \
        in capsys.readouterr().err
    assert cli("pretrain", "--corpus", corpus, "--out", tmp_path / "d", *SMALL, "--block", "modern",
               "--set", "model.num_heads=3", "--set", "train.max_steps=1") == 2
    assert "model.hidden_size 32 is not divisible by model.num_heads 3" in capsys.readouterr().err


def test_onnx_export_of_the_modern_block_keeps_the_window_at_any_length(modern_run, tmp_path):
    """The graph is traced at a short example, shorter than the band; it must still apply the sliding
    window to longer inputs, and take the same three inputs as BERT's (token_type_ids unused)."""
    pytest.importorskip("onnxruntime")
    from bertcli.checkpoint import load_encoder
    from bertcli.hf.onnx import OnnxModule

    assert cli("convert", modern_run / "final", "--to", "onnx", "--out", tmp_path / "onnx") == 0
    ckpt = load_checkpoint(modern_run / "final")
    graph = OnnxModule(tmp_path / "onnx" / "model.onnx", threads=1)
    ids, mask = _inputs(ckpt.config.vocab_size)  # 50 tokens: past the window of 16
    with torch.no_grad():
        ours, _ = load_encoder(ckpt).eval()(ids, None, mask)
    theirs = graph(ids, None, mask)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    assert float((ours - theirs)[mask.bool()].abs().max()) < 1e-4
