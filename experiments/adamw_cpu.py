"""AdamW's step on CPU: the single-tensor loop (torch's CPU default, what a plain Hugging Face loop
runs), foreach (bertcli's CPU path until now) and the fused kernel, on the parameter shapes of a
real model. Interleaved rounds (A, B, C, A, B, C, ...), median time per step, and the largest
difference of the parameters after the same steps (the three must agree to rounding).

  PYTHONPATH=src .venv/bin/python experiments/adamw_cpu.py --checkpoint bench/out/tasks-full/minilm --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bertcli.checkpoint import load_checkpoint
from bertcli.model.heads import BertForPretraining

VARIANTS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a bertcli checkpoint whose shapes to use (default: BERT-tiny)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        model = BertForPretraining(load_checkpoint(args.checkpoint).config)
    else:
        from bertcli.model.config import BertConfig
        model = BertForPretraining(BertConfig(vocab_size=30522, hidden_size=128, num_layers=2, num_heads=2,
                                              intermediate_size=512))
    shapes = [param.shape for param in model.parameters()]
    total = sum(param.numel() for param in model.parameters())
    torch.manual_seed(0)
    grads = [[torch.randn(shape) * 1e-2 for shape in shapes] for _ in range(args.steps)]
    start = [torch.randn(shape) * 2e-2 for shape in shapes]
    times = {name: [] for name in VARIANTS}
    finals = {}
    for _ in range(args.rounds):
        for name, kwargs in VARIANTS.items():
            params = [torch.nn.Parameter(t.clone()) for t in start]
            optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, eps=1e-6, **kwargs)
            for step_grads in grads[:1]:  # first step allocates the state: not timed
                for param, grad in zip(params, step_grads):
                    param.grad = grad
                optimizer.step()
            started = time.perf_counter()
            for step_grads in grads[1:]:
                for param, grad in zip(params, step_grads):
                    param.grad = grad
                optimizer.step()
            times[name].append((time.perf_counter() - started) / (args.steps - 1))
            finals[name] = [param.detach() for param in params]
    print(f"{total / 1e6:.1f} M parameters in {len(shapes)} tensors, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved rounds of {args.steps - 1} timed steps")
    base = statistics.median(times["for-loop"])
    for name, values in times.items():
        diff = max((a - b).abs().max().item() for a, b in zip(finals[name], finals["for-loop"]))
        print(f"{name:>9}: {1e3 * statistics.median(values):7.1f} ms a step (runs "
              f"{', '.join(f'{1e3 * v:.1f}' for v in values)}), {base / statistics.median(values):.2f}x the "
              f"for-loop; max |param - for-loop's| {diff:.1e}")


if __name__ == "__main__":
    main()
