"""Why small BERTs sit on a unigram plateau: a copy task neither bertcli nor transformers learns fast.

    .venv/bin/python experiments/plateau_copy.py [--steps 1500] [--vocab 1000]

Every sequence is random tokens in identical pairs (a a b b c c ...), 15 % of positions masked
with [MASK]: each masked token is readable from its neighbour, so a model that can attend to the
position next to it solves the task. BERT-tiny (L2-H128, learned absolute positions, dropout 0.1,
AdamW lr 1e-3, batch 16 x 128) is trained on it from BERT's initialisation, as bertcli's
BertForPretraining and as transformers' BertForMaskedLM, one thread each, seed 0; prints the
masked-token loss and accuracy every 100 steps. At initialisation attention is uniform, and
attending to the neighbour pays only once the values carry token identity, which they learn only
once attention focuses: a saddle that random-token text leaves slowly. Pretraining on real text
has the same plateau (bench/RESULTS.md, issue 9): the loss sits near the unigram entropy until
the model learns to use its neighbours.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bertcli.model import BertConfig, BertForPretraining  # noqa: E402

MASK, T, B = 4, 128, 16


def batches(vocab: int, steps: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    targets = max(1, int(0.15 * T))
    for _ in range(steps):
        tokens = torch.randint(5, vocab, (B, T // 2), generator=generator).repeat_interleave(2, dim=1)
        positions = torch.stack([torch.randperm(T, generator=generator)[:targets] for _ in range(B)])
        yield tokens.scatter(1, positions, MASK), positions, tokens.gather(1, positions)


def train(model_kind: str, vocab: int, steps: int) -> None:
    torch.manual_seed(0)
    if model_kind == "bertcli":
        model = BertForPretraining(BertConfig(vocab_size=vocab, hidden_size=128, num_layers=2, num_heads=2,
                                              intermediate_size=512, pad_token_id=0))
    else:
        import transformers
        model = transformers.BertForMaskedLM(transformers.BertConfig(
            vocab_size=vocab, hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step, (inputs, positions, labels) in enumerate(batches(vocab, steps, seed=1)):
        if model_kind == "bertcli":
            out = model(inputs, torch.zeros_like(inputs), None, positions, labels)
            loss, logits, targets = out["loss"], out["mlm_logits"], out["mlm_targets"]
        else:
            full = torch.full_like(inputs, -100).scatter(1, positions, labels)
            out = model(input_ids=inputs, labels=full)
            chosen = full != -100
            loss, logits, targets = out.loss, out.logits[chosen], full[chosen]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0 or step == steps - 1:
            accuracy = float((logits.argmax(-1) == targets).float().mean())
            print(f"{model_kind:>12} step {step:5d}  loss {loss.item():.3f}  accuracy {accuracy:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--models", nargs="+", default=["bertcli", "transformers"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"copy task: vocabulary {args.vocab}, ln V = {torch.log(torch.tensor(float(args.vocab))):.3f}")
    for kind in args.models:
        train(kind, args.vocab, args.steps)


if __name__ == "__main__":
    main()
