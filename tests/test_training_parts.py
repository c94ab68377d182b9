import numpy as np
import pytest
import torch

from bertcli.model import BertConfig, BertForPretraining
from bertcli.train.metrics import classification_metrics, matthews
from bertcli.train.optim import param_groups
from bertcli.train.sampling import EpochBatches
from bertcli.train.schedule import lr_at, warmup_steps


def test_lr_warms_up_linearly_then_decays_to_zero():
    lrs = [lr_at(step, 1.0, 4, 20) for step in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == 1.0 and lrs[12] == pytest.approx(0.5) and lrs[19] == pytest.approx(1 / 16)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))
    assert warmup_steps(1000, -1, 0.1) == 100 and warmup_steps(1000, 7, 0.1) == 7


def test_no_weight_decay_on_biases_and_layernorm():
    model = BertForPretraining(BertConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2,
                                          intermediate_size=32))
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(not names[id(p)].endswith("bias") and "norm" not in names[id(p)] for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} >= {"bert.embeddings.norm.weight", "mlm.bias"}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_batches_are_a_pure_function_of_seed_and_step():
    a, b = EpochBatches(10, 4, seed=3), EpochBatches(10, 4, seed=3)
    first = [a.indices(s).tolist() for s in range(5)]
    assert [b.indices(s).tolist() for s in (4, 0, 2, 1, 3)] == [first[s] for s in (4, 0, 2, 1, 3)]
    assert sorted(sum(first, [])[:10]) == list(range(10))  # the first epoch is a permutation
    assert EpochBatches(10, 4, seed=4).indices(0).tolist() != first[0]


def test_classification_metrics_against_hand_computed_values():
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    preds = np.array([1, 1, 0, 0, 0, 1, 1, 0])
    m = classification_metrics(preds, labels, 2)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(0.75)  # tp 3, fp 1, fn 1
    assert m["mcc"] == pytest.approx(0.5)  # (3*3 - 1*1) / sqrt(4*4*4*4)
    assert matthews(labels, labels, 2) == pytest.approx(1.0)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_bf16_instructions_is_flagged(monkeypatch, native):
    from bertcli.runtime import slow_dtype_warning

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    warning = slow_dtype_warning(cpu, "bf16")
    assert (warning is None) == native
    if not native:
        assert "runtime.dtype=bf16" in warning and "use runtime.dtype=fp32" in warning
    assert slow_dtype_warning(cpu, "fp32") is None
    assert "GPUs" in slow_dtype_warning(cpu, "fp16")
    assert slow_dtype_warning(torch.device("cuda"), "bf16") is None
