"""ELECTRA's step against an MLM step of the discriminator's size, on synthetic batches (no corpus):
the model's forward, backward and AdamW step alone, four timed rounds of 10 steps each side,
interleaved, after one warm-up round; prints median ms/step and the ratio.

    PYTHONPATH=src .venv/bin/python experiments/electra_step_cost.py tiny 64 32   # preset batch seq
"""

import statistics
import sys
import time

import torch

from bertcli.model.config import BertConfig
from bertcli.model.electra import ElectraForPretraining, generator_config
from bertcli.model.heads import BertForPretraining

torch.set_num_threads(2)
torch.manual_seed(0)
preset, B, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
P = max(1, round(T * 0.15))
cfg = BertConfig.from_preset(preset, vocab_size=2000)


def batch() -> dict:
    ids = torch.randint(5, 2000, (B, T))
    positions = torch.stack([torch.randperm(T - 1)[:P] + 1 for _ in range(B)])
    return dict(input_ids=ids, token_type_ids=None, attention_mask=None, mlm_positions=positions,
                mlm_labels=torch.randint(5, 2000, (B, P)))


models = {"mlm": BertForPretraining(cfg), "electra": ElectraForPretraining(cfg, generator_config(cfg, 0.25))}
optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}


def step(k: str) -> None:
    models[k](**batch())["loss"].backward()
    optimizers[k].step()
    optimizers[k].zero_grad(set_to_none=True)


times = {k: [] for k in models}
for _ in range(5):
    for k in models:
        start = time.perf_counter()
        for _ in range(10):
            step(k)
        times[k].append(time.perf_counter() - start)
ms = {k: statistics.median(v[1:]) / 10 * 1000 for k, v in times.items()}
print(f"{preset} batch {B} seq {T}: mlm {ms['mlm']:.1f} ms, electra {ms['electra']:.1f} ms, "
      f"ratio {ms['electra'] / ms['mlm']:.2f}")
