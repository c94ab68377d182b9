"""The modern block's step against BERT's at the same width and depth, on synthetic batches (no
corpus): an MLM model's forward, backward and AdamW step alone, four timed rounds of 10 steps per
variant, interleaved, after one warm-up round; prints median ms/step and each variant's ratio to BERT.
The batch is unpadded (a packed corpus), so the sliding window's band is the only mask. Variants:
BERT as published (dropout 0.1); BERT without dropout; the modern block as ModernBERT trains it (no
dropout); with BERT's dropout; and without its sliding window (every layer global, no dropout).

    PYTHONPATH=src .venv/bin/python experiments/block_step_cost.py mini 32 128   # preset batch seq
    PYTHONPATH=src .venv/bin/python experiments/block_step_cost.py tiny 32 128 ablate

`ablate`: BERT without dropout with one modern setting added at a time, to see what each costs.
"""

import dataclasses
import statistics
import sys
import time

import torch

from bertcli.model.config import BertConfig
from bertcli.model.heads import BertForPretraining

torch.set_num_threads(2)
torch.manual_seed(0)
preset, B, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
P = max(1, round(T * 0.15))
V = 2000
VARIANTS = {
    "bert": BertConfig.from_preset(preset, vocab_size=V),
    "bert-dropout": BertConfig.from_preset(preset, vocab_size=V, dropout=0.0, attention_dropout=0.0),
    "modern": BertConfig.from_preset(preset, block="modern", vocab_size=V, dropout=0.0, attention_dropout=0.0),
    "modern+dropout": BertConfig.from_preset(preset, block="modern", vocab_size=V),
    "modern-nowindow": BertConfig.from_preset(preset, block="modern", vocab_size=V, dropout=0.0,
                                            attention_dropout=0.0, local_window=0),
}

if sys.argv[4:] == ["ablate"]:
    plain = dataclasses.replace(VARIANTS["bert"], dropout=0.0, attention_dropout=0.0)
    VARIANTS = {"bert": plain, "modern": VARIANTS["modern"],
                "+rotary": dataclasses.replace(plain, position="rotary"),
                "+geglu": dataclasses.replace(plain, ffn="geglu", intermediate_size=VARIANTS["modern"].intermediate_size),
                "+pre-LN": dataclasses.replace(plain, norm="pre"),
                "+no biases": dataclasses.replace(plain, bias=False),
                "modern-rotary": dataclasses.replace(VARIANTS["modern"], position="learned")}


def batch() -> dict:
    positions = torch.stack([torch.randperm(T - 1)[:P] + 1 for _ in range(B)])
    return dict(input_ids=torch.randint(5, V, (B, T)), token_type_ids=None, attention_mask=None,
                mlm_positions=positions, mlm_labels=torch.randint(5, V, (B, P)))


models = {k: BertForPretraining(c) for k, c in VARIANTS.items()}
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
params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
print(f"{preset} batch {B} seq {T} (ms/step, x the first row's, parameters):")
for k in models:
    print(f"  {k:15s} {ms[k]:7.1f} ms  {ms[k] / ms['bert']:.2f}x  {params[k] / 1e6:.2f} M")
