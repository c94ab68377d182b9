"""`bertcli finetune --task cls`: a pretrained encoder plus a new classification head.

The pretraining heads are dropped (Devlin et al. 2019, section 4); the encoder keeps the
architecture of the checkpoint it came from. The dev set is evaluated after every epoch and the
best epoch is kept. Run folder (renamed into place only when complete):
  manifest.json, config.yaml, metrics.jsonl
  best/    the checkpoint of the best dev epoch (what `eval RUN` and `--init RUN` take)
  final/   the checkpoint after the last step
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from bertcli import artifacts, config
from bertcli.checkpoint import ENCODER_PREFIX, load_checkpoint, save_checkpoint
from bertcli.config import FinetuneConfig
from bertcli.data.tasks import encode_examples, label_ids, label_names, read_examples
from bertcli.errors import UserError
from bertcli.model import BertConfig, BertForSequenceClassification
from bertcli.runtime import configure, console, hardware, pick_device, seed_everything
from bertcli.train import events
from bertcli.train.evaluation import evaluate_classification, to_device
from bertcli.train.loop import TrainJob, append_metrics, train_loop
from bertcli.train.optim import make_optimizer
from bertcli.train.sampling import WholeEpochBatches
from bertcli.train.schedule import warmup_steps

# Which dev metric picks the best epoch.
SELECTION_METRIC = "accuracy"


def run(cfg: FinetuneConfig) -> Path:
    for value, flag in ((cfg.init, "--init CKPT"), (cfg.data.train, "--train FILE"), (cfg.data.dev, "--dev FILE"),
                        (cfg.out, "--out FT")):
        if not value:
            raise UserError(f"finetune: missing {flag.split()[0]}; pass {flag}")
    out = artifacts.check_output_target(cfg.out, "finetune-run", inputs=[cfg.init, cfg.data.train, cfg.data.dev])
    ckpt = load_checkpoint(cfg.init)
    tokenizer = ckpt.tokenizer()
    arch = BertConfig.from_dict({**ckpt.config.to_dict(),
                                 **({"dropout": cfg.dropout} if cfg.dropout is not None else {})})
    if cfg.data.max_seq_len > arch.max_position_embeddings:
        raise UserError(f"data.max_seq_len {cfg.data.max_seq_len} exceeds the model's "
                        f"{arch.max_position_embeddings} positions; lower --max-seq-len")

    train_examples = read_examples(cfg.data.train, cfg.data)
    dev_examples = read_examples(cfg.data.dev, cfg.data)
    labels = label_names(train_examples.labels, train_examples.path)
    if len(labels) < 2:
        raise UserError(f"{cfg.data.train}: only one label ({labels[0]!r}); classification needs at least two")
    train_set = encode_examples(train_examples, tokenizer, cfg.data.max_seq_len, label_ids(train_examples, labels))
    dev_set = encode_examples(dev_examples, tokenizer, cfg.data.max_seq_len, label_ids(dev_examples, labels))

    configure(cfg.runtime.threads)
    device = pick_device(cfg.runtime.device)
    seed_everything(cfg.train.seed)
    model = BertForSequenceClassification(arch, len(labels), cfg.classifier_dropout)
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()}
    model.bert.load_state_dict(encoder)  # strict: every encoder weight must come from the checkpoint
    missing = [name for name in ckpt.extra.get("missing", []) if name.startswith("bert.")]
    if missing:
        console.print(f"[yellow]note:[/] {ckpt.folder} was imported without {', '.join(missing)}; "
                      f"those weights start from random initialisation")
    model.to(device)
    optimizer = make_optimizer(model, cfg.optim, device)

    batches = WholeEpochBatches(len(train_set), cfg.train.batch_size, cfg.train.seed)
    steps_per_epoch = batches.steps_per_epoch
    total = cfg.train.max_steps or math.ceil(cfg.train.epochs * steps_per_epoch)
    micro = cfg.train.batch_size // cfg.train.grad_accum
    columns = dict(zip(("text_column", "text_pair_column", "label_column"), train_examples.columns))
    task_info = {"columns": columns, "max_seq_len": cfg.data.max_seq_len, "init": str(ckpt.folder)}
    best = {"score": -math.inf, "epoch": 0}

    with artifacts.staged_folder(out) as tmp:
        console.print(f"fine-tuning {ckpt.folder} on {len(train_set):,} examples, {len(labels)} labels "
                      f"({', '.join(labels)}), {total} steps; dev {len(dev_set):,} examples")
        metrics_path = tmp / "metrics.jsonl"
        artifacts.write_manifest(tmp, "finetune-run", config.to_dict(cfg),
                                 [Path(cfg.data.train), Path(cfg.data.dev)], task=cfg.task, labels=labels,
                                 hardware=hardware(device))

        def save(folder: Path, extra: dict) -> None:
            save_checkpoint(folder, model.state_dict(), arch, cfg.task, ["classifier"], tokenizer,
                            labels=labels, extra={**task_info, **extra}, run_config=config.to_dict(cfg))

        def micro_batches(step: int):
            indices = batches.indices(step)
            return [{**to_device(train_set.batch(indices[i:i + micro], tokenizer.pad_id), device),
                     "share": len(indices[i:i + micro]) / len(indices)}
                    for i in range(0, len(indices), micro)]

        def after_step(done: int) -> None:
            if done % steps_per_epoch and done != total:
                return
            epoch = done / steps_per_epoch
            result = evaluate_classification(model, dev_set, tokenizer.pad_id, 2 * cfg.train.batch_size,
                                             cfg.runtime.dtype)
            append_metrics(metrics_path, {"step": done, "epoch": round(epoch, 3), "split": "dev", **result})
            console.print(f"epoch {epoch:.2f}: dev accuracy {result['accuracy']:.4f}  F1 {result['f1']:.4f}  "
                          f"MCC {result['mcc']:.4f}")
            if result[SELECTION_METRIC] > best["score"]:
                best.update(score=result[SELECTION_METRIC], epoch=epoch, step=done, dev=result)
                save(tmp / "best", {"epoch": epoch, "step": done, "dev": result})

        job = TrainJob(total_steps=total, peak_lr=cfg.optim.lr,
                       warmup=warmup_steps(total, cfg.optim.warmup_steps, cfg.optim.warmup_ratio),
                       grad_clip=cfg.optim.grad_clip, log_every=cfg.train.log_every,
                       micro_batches=micro_batches, losses=classification_loss,
                       after_step=after_step, metrics_path=metrics_path, dtype=cfg.runtime.dtype,
                       description="finetune")
        with events.tensorboard(metrics_path, tmp / "tensorboard", cfg.runtime.tensorboard):
            train_loop(torch.compile(model) if cfg.runtime.compile else model, optimizer, job, 0,
                       cfg.runtime.progress)
        save(tmp / "final", {"step": total})
    console.print(f"best dev {SELECTION_METRIC} {best['score']:.4f} at epoch {best['epoch']:.2f}; "
                  f"fine-tuned model: {out / 'best'}")
    return out


def classification_loss(model: BertForSequenceClassification, batch: dict[str, torch.Tensor]) -> dict:
    """This micro-batch's share of the step's mean cross-entropy."""
    logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return {"loss": F.cross_entropy(logits.float(), batch["labels"]) * batch["share"]}
