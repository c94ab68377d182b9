import pytest
import torch

from bertcli.model import (BertConfig, BertEncoder, BertForPretraining, BertForSequenceClassification,
                           preset_names, preset_shape)

TINY = BertConfig(vocab_size=120, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                  max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)


def test_presets_cover_the_24_small_berts_and_base_large():
    names = preset_names()
    grid = [f"L{l}-H{h}" for l in (2, 4, 6, 8, 10, 12) for h in (128, 256, 512, 768)]
    assert set(grid) <= set(names) and len(grid) == 24
    assert preset_shape("L6-H512") == {"hidden_size": 512, "num_layers": 6, "num_heads": 8, "intermediate_size": 2048}
    assert preset_shape("tiny") == preset_shape("L2-H128")
    assert preset_shape("large") == {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "intermediate_size": 4096}
    with pytest.raises(KeyError):
        preset_shape("L3-H100")


def test_bert_base_has_110m_parameters():
    with torch.device("meta"):
        model = BertForPretraining(BertConfig(**preset_shape("base")))
    encoder = sum(p.numel() for p in model.bert.parameters())
    assert 109_000_000 < encoder < 110_000_000  # 109.5 M, as in the paper's "110M"


def test_shapes_and_padding_does_not_change_real_tokens():
    torch.manual_seed(0)
    model = BertEncoder(TINY).eval()
    ids = torch.randint(5, 120, (2, 9))
    hidden, pooled = model(ids, torch.zeros_like(ids), torch.ones_like(ids))
    assert hidden.shape == (2, 9, 32) and pooled.shape == (2, 32)
    padded = torch.cat([ids, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(2, 9, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)], dim=1)
    hidden_padded, pooled_padded = model(padded, torch.zeros_like(padded), mask)
    torch.testing.assert_close(hidden_padded[:, :9], hidden, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled_padded, pooled, atol=1e-5, rtol=1e-5)
    assert torch.all(pooled.abs() <= 1)  # tanh pooler


def test_segments_change_the_output():
    model = BertEncoder(TINY).eval()
    ids = torch.randint(5, 120, (1, 6))
    a, _ = model(ids, torch.zeros_like(ids))
    b, _ = model(ids, torch.ones_like(ids))
    assert not torch.allclose(a, b)


def test_sparse_mlm_head_equals_full_logits_at_masked_positions():
    torch.manual_seed(0)
    model = BertForPretraining(TINY).eval()
    ids = torch.randint(5, 120, (2, 10))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # the second example is padded: the last layer's rows must still see the mask
    positions = torch.tensor([[1, 4, 0], [2, 0, 0]])
    labels = torch.tensor([[7, 8, -100], [9, -100, -100]])
    out = model(ids, torch.zeros_like(ids), mask, positions, labels, torch.tensor([0, 1]))
    full = model.mlm_logits_all(ids, torch.zeros_like(ids), mask)
    assert out["mlm_logits"].shape == (6, 120)  # every (B, P) slot; padded slots have target -100
    assert out["mlm_targets"].tolist() == [7, 8, -100, 9, -100, -100]
    real = out["mlm_targets"] != -100
    torch.testing.assert_close(out["mlm_logits"][real], torch.stack([full[0, 1], full[0, 4], full[1, 2]]))
    expected = torch.nn.functional.cross_entropy(out["mlm_logits"][real], torch.tensor([7, 8, 9]))
    torch.testing.assert_close(out["mlm_loss"], expected)
    _, pooled = model.bert(ids, torch.zeros_like(ids), mask)
    torch.testing.assert_close(model.nsp(pooled), out["nsp_logits"])  # [CLS] row of the sparse last layer


def test_mlm_decoder_is_tied_to_word_embeddings():
    model = BertForPretraining(TINY)
    names = dict(model.named_parameters())
    assert "mlm.bias" in names and not any("decoder" in n for n in names)
    ids = torch.randint(5, 120, (1, 5))
    out = model(ids, None, None, torch.tensor([[1]]), torch.tensor([[3]]), torch.tensor([0]))
    out["mlm_loss"].backward()
    assert model.bert.embeddings.word.weight.grad[3].abs().sum() > 0  # gradient reaches through the tie


def test_classifier_head_on_pooled_output():
    model = BertForSequenceClassification(TINY, num_labels=3)
    ids = torch.randint(5, 120, (4, 7))
    assert model(ids).shape == (4, 3)
