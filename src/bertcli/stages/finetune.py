"""`bertcli finetune --task cls|regression|ner|qa`: a pretrained encoder plus a task head.

The pretraining heads are dropped (Devlin et al. 2019, section 4); the encoder keeps the
architecture of the checkpoint it came from. The dev set is evaluated after every epoch and the
task's own selection metric (accuracy, Spearman, entity F1, SQuAD F1) picks the best epoch;
`patience` stops a run whose dev metric has not improved for that many epochs. `--mode features`
freezes the encoder, computes the chosen layers' features once, and trains a small task model on
them (section 5.3). `seeds: [1, 2, 3]` runs once per seed and reports the median and spread.

Run folder (renamed into place only when complete):
  manifest.json, config.yaml, metrics.jsonl
  best/    the checkpoint of the best dev epoch (what `eval RUN`, `predict RUN` and `--init RUN` take)
  final/   the checkpoint after the last step
With several seeds: seed-N/ (a run folder each), summary.json, and best/ (the median seed's).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import torch

from bertcli import artifacts, config
from bertcli.checkpoint import ENCODER_PREFIX, load_checkpoint, save_checkpoint
from bertcli.config import FinetuneConfig
from bertcli.errors import UserError
from bertcli.model import BertConfig
from bertcli.runtime import configure, console, hardware, pick_device, seed_everything, warn_if_slow_dtype
from bertcli.tasks import Batchable, Task, TaskSettings, get_task
from bertcli.train import events
from bertcli.train.evaluation import forward_all, to_device
from bertcli.train.loop import TrainJob, append_metrics, train_loop
from bertcli.train.optim import make_optimizer
from bertcli.train.sampling import LengthGroupedBatches, WholeEpochBatches
from bertcli.folder_lock import writes_output
from bertcli.train.schedule import warmup_steps


class EarlyStop(Exception):
    """Raised after a dev check when `patience` checks have passed without a better score."""


@dataclasses.dataclass
class Prepared:
    """Everything that is the same for every seed: read and encoded once."""

    task: Task
    settings: TaskSettings
    labels: list[str]
    train: Batchable
    dev: Batchable
    features: dict  # features mode: split -> per-example cached features, filled by the first seed


@writes_output
def run(cfg: FinetuneConfig) -> Path:
    for value, flag in ((cfg.init, "--init CKPT"), (cfg.data.train, "--train FILE"), (cfg.data.dev, "--dev FILE"),
                        (cfg.out, "--out FT")):
        if not value:
            raise UserError(f"finetune: missing {flag.split()[0]}; pass {flag}")
    out = artifacts.check_output_target(cfg.out, "finetune-run", inputs=[cfg.init, cfg.data.train, cfg.data.dev])
    ckpt = load_checkpoint(cfg.init)
    if cfg.data.max_seq_len > ckpt.config.max_position_embeddings:
        raise UserError(f"data.max_seq_len {cfg.data.max_seq_len} exceeds the model's "
                        f"{ckpt.config.max_position_embeddings} positions; lower --max-seq-len")
    if cfg.mode == "features" and cfg.features.layers.endswith("last_four") and ckpt.config.num_layers < 4:
        raise UserError(f"features.layers={cfg.features.layers} needs at least 4 layers; {ckpt.folder} has "
                        f"{ckpt.config.num_layers}. Choose last, second_to_last or embeddings")
    prepared = prepare(cfg, ckpt)
    configure(cfg.runtime.threads)
    seeds = cfg.seeds or [cfg.train.seed]
    if len(seeds) == 1:
        run_one(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seeds[0])), ckpt, prepared, out)
        return out
    results = []
    with artifacts.staged_folder(out) as tmp:
        artifacts.write_manifest(tmp, "finetune-run", config.to_dict(cfg),
                                 [Path(cfg.data.train), Path(cfg.data.dev)], task=cfg.task, labels=prepared.labels)
        for seed in seeds:
            console.print(f"[bold]seed {seed}[/]")
            seed_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            results.append(run_one(seed_cfg, ckpt, prepared, tmp / f"seed-{seed}"))
        summary = summarize(seeds, results, prepared.task)
        artifacts.atomic_write_text(tmp / "summary.json", json.dumps(summary, indent=2) + "\n")
        shutil.copytree(tmp / f"seed-{summary['median_seed']}" / "best", tmp / "best")
    metric = prepared.task.selection_metric
    spread = summary["metrics"][metric]
    console.print(f"{len(seeds)} seeds: dev {metric} median {spread['median']:.4f} (min {spread['min']:.4f}, "
                  f"max {spread['max']:.4f}, std {spread['std']:.4f}); {out / 'summary.json'}; "
                  f"{out / 'best'} is seed {summary['median_seed']}'s")
    return out


def prepare(cfg: FinetuneConfig, ckpt) -> Prepared:
    task = get_task(cfg.task)
    if hasattr(task, "data_config"):
        task.data_config = cfg.data
    head = cfg.features.head if cfg.features.head != "auto" else ("bilstm" if task.per_token else "linear")
    if head == "bilstm" and not task.per_token:
        raise UserError(f"features.head=bilstm tags tokens; --task {cfg.task} needs features.head=linear")
    settings = TaskSettings(max_seq_len=cfg.data.max_seq_len, doc_stride=cfg.qa.doc_stride,
                            max_query_len=cfg.qa.max_query_len, max_answer_len=cfg.qa.max_answer_len,
                            n_best=cfg.qa.n_best, mode=cfg.mode, layers=cfg.features.layers, head=head,
                            lstm_size=cfg.features.lstm_size, pooling=cfg.pooling)
    train = task.read(cfg.data.train, settings)
    dev = task.read(cfg.data.dev, settings)
    labels = task.label_set(train) if task.has_labels else []
    settings = task.settings_from(train, settings)
    tokenizer = ckpt.tokenizer()
    train_set = task.encode(train, tokenizer, settings, labels)
    dev_set = task.encode(dev, tokenizer, settings, labels)
    for name, data in (("--train", train_set), ("--dev", dev_set)):
        if len(data.encoded) == 0:
            raise UserError(f"{name} {data.source.path}: no examples after reading; give a file with examples")
    return Prepared(task, settings, labels, train_set, dev_set, {})


def run_one(cfg: FinetuneConfig, ckpt, prepared: Prepared, out: Path) -> dict:
    recipe = FinetuneRecipe(cfg, ckpt, prepared)
    recipe.setup()
    with artifacts.staged_folder(out) as tmp:  # first, so that an unwritable --out fails before any message
        recipe.train(tmp)
        recipe.save(tmp / "final", {"step": recipe.best.get("last_step", recipe.total)})
    metric, best = prepared.task.selection_metric, recipe.best
    console.print(f"best dev {metric} {best['score']:.4f} at epoch {best['epoch']:.2f}; "
                  f"fine-tuned model: {out / 'best'}")
    return {"score": best["score"], "epoch": best["epoch"], "dev": best.get("dev", {})}


class FinetuneRecipe:
    """One seed's fine-tuning in two steps: `setup` (the task model with the checkpoint's encoder,
    the optimizer, the batches; in features mode the frozen features, computed once for all seeds)
    and `train` into a staged run folder (the dev set after every epoch keeps best/ and can stop
    early); `save` writes a checkpoint of the model as it stands."""

    def __init__(self, cfg: FinetuneConfig, ckpt, prepared: Prepared):
        self.cfg, self.ckpt, self.prepared = cfg, ckpt, prepared
        self.task, self.settings, self.labels = prepared.task, prepared.settings, prepared.labels
        self.train_set, self.dev_set = prepared.train.encoded, prepared.dev.encoded
        self.features_mode = cfg.mode == "features"
        self.best = {"score": -math.inf, "epoch": 0, "checks_since": 0}

    # ------------------------------------------------------------------------- setup

    def setup(self) -> None:
        cfg, task, ckpt = self.cfg, self.task, self.ckpt
        self.tokenizer = ckpt.tokenizer()
        self.arch = BertConfig.from_dict({**ckpt.config.to_dict(),
                                          **({"dropout": cfg.dropout} if cfg.dropout is not None else {})})
        self.device = pick_device(cfg.runtime.device)
        warn_if_slow_dtype(self.device, cfg.runtime.dtype)
        seed_everything(cfg.train.seed)
        build = task.build_feature_model if self.features_mode else task.build_model
        self.model = build(self.arch, self.labels, self.settings, cfg.classifier_dropout)
        encoder = {k[len(ENCODER_PREFIX):]: v for k, v in ckpt.encoder_state().items()}
        self.model.bert.load_state_dict(encoder)  # strict: every encoder weight must come from the checkpoint
        missing = [name for name in ckpt.extra.get("missing", []) if name.startswith("bert.")]
        if missing:
            console.print(f"[yellow]note:[/] {ckpt.folder} was imported without {', '.join(missing)}; "
                          f"those weights start from random initialisation")
        self.model.to(self.device)
        self.optim = dataclasses.replace(cfg.optim, lr=cfg.features.lr) if self.features_mode else cfg.optim
        self.optimizer = make_optimizer(self.model, self.optim)
        if self.features_mode and not self.prepared.features:
            self._compute_features()
        if cfg.data.group_by_length:
            self.batches = LengthGroupedBatches(self.train_set.lengths(), cfg.train.batch_size, cfg.train.seed)
        else:
            self.batches = WholeEpochBatches(len(self.train_set), cfg.train.batch_size, cfg.train.seed)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.total = cfg.train.max_steps or math.ceil(cfg.train.epochs * self.steps_per_epoch)
        self.micro = cfg.train.batch_size // cfg.train.grad_accum
        self.heads = ["head"] if self.features_mode else [name for name, _ in self.model.named_children()
                                                         if name != "bert"]

    def _compute_features(self) -> None:
        cache, settings = self.prepared.features, self.settings
        console.print(f"computing {settings.layers} features of {len(self.train_set) + len(self.dev_set):,} "
                      f"examples once")
        for split, data in (("train", self.train_set), ("dev", self.dev_set)):
            cache[split] = [f.astype(np.float16) for f in forward_all(
                self.model, data, self.tokenizer.pad_id, 64, "fp32",
                run=lambda m, idx, b: m.features(b["input_ids"], b["token_type_ids"], b["attention_mask"]))]

    # ------------------------------------------------------------------------- train

    def train(self, folder: Path) -> None:
        cfg, task, settings = self.cfg, self.task, self.settings
        self.folder = folder
        console.print(f"{'training a ' + settings.head + ' model on frozen features' if self.features_mode else 'fine-tuning'}"
                      f" {self.ckpt.folder} for {task.name} on {len(self.train_set):,} examples"
                      f"{f', {len(self.labels)} labels' if self.labels else ''}, {self.total} steps; "
                      f"dev {len(self.dev_set):,} examples")
        self.metrics_path = folder / artifacts.METRICS
        artifacts.write_manifest(folder, "finetune-run", config.to_dict(cfg),
                                 [Path(cfg.data.train), Path(cfg.data.dev)], task=cfg.task, labels=self.labels,
                                 hardware=hardware(self.device))
        job = TrainJob(total_steps=self.total, peak_lr=self.optim.lr,
                       warmup=warmup_steps(self.total, self.optim.warmup_steps, self.optim.warmup_ratio),
                       grad_clip=self.optim.grad_clip, log_every=cfg.train.log_every,
                       micro_batches=self.micro_batches, losses=self.losses,
                       after_step=self.after_step, metrics_path=self.metrics_path, dtype=cfg.runtime.dtype,
                       description=f"finetune {task.name}")
        try:
            with events.tensorboard(self.metrics_path, folder / "tensorboard", cfg.runtime.tensorboard):
                train_loop(torch.compile(self.model) if cfg.runtime.compile else self.model, self.optimizer, job, 0,
                           cfg.runtime.progress)
        except EarlyStop:
            console.print(f"early stop: dev {task.selection_metric} has not improved for {cfg.patience} epochs")

    def micro_batches(self, step: int) -> list[dict]:
        indices = self.batches.indices(step)
        out = []
        for i in range(0, len(indices), self.micro):
            part = indices[i:i + self.micro]
            batch = to_device(self.train_set.batch(part, self.tokenizer.pad_id), self.device)
            if self.features_mode:
                batch = self._with_features("train", part, batch)
            out.append({**batch, "share": len(part) / len(indices)})
        return out

    def losses(self, model, batch: dict) -> dict:
        return {"loss": self.task.loss(self._outputs(model, batch), batch) * batch["share"]}

    def after_step(self, done: int) -> None:
        """At each epoch's end (and the last step): the dev metrics, best/ when they improved, and
        an early stop after `patience` epochs without."""
        cfg, task, best = self.cfg, self.task, self.best
        best["last_step"] = done
        if done % self.steps_per_epoch and done != self.total:
            return
        epoch = done / self.steps_per_epoch
        run = (lambda m, idx, b: self._outputs(m, self._with_features("dev", idx, b))) if self.features_mode else None
        outputs = forward_all(self.model, self.dev_set, self.tokenizer.pad_id, 2 * cfg.train.batch_size,
                              cfg.runtime.dtype, run)
        result = task.metrics(self.prepared.dev, outputs, self.labels, self.settings)
        append_metrics(self.metrics_path, {"step": done, "epoch": round(epoch, 3), "split": "dev", **result})
        console.print(f"epoch {epoch:.2f}: dev {task.summary(result)}")
        if result[task.selection_metric] > best["score"]:
            best.update(score=result[task.selection_metric], epoch=epoch, step=done, dev=result, checks_since=0)
            self.save(self.folder / "best", {"epoch": epoch, "step": done, "dev": result})
        else:
            best["checks_since"] += 1
            if cfg.patience and best["checks_since"] >= cfg.patience and done != self.total:
                raise EarlyStop()

    def _outputs(self, model, batch: dict):
        if self.features_mode:
            return model.head(batch["features"], batch["attention_mask"])
        return model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])

    def _with_features(self, split: str, indices, batch: dict) -> dict:
        """The batch plus its cached features, padded to the batch's length (per-token tasks)."""
        features = [self.prepared.features[split][i] for i in indices]
        shape = (len(features), int(batch["attention_mask"].shape[1]), *features[0].shape[1:]) \
            if self.task.per_token else (len(features), *features[0].shape)
        padded = np.zeros(shape, dtype=np.float32)
        for row, f in enumerate(features):
            padded[row, :len(f)] = f
        return {**batch, "features": torch.from_numpy(padded).to(self.device)}

    # ------------------------------------------------------------------------- save

    def save(self, folder: Path, extra: dict) -> None:
        cfg, settings = self.cfg, self.settings
        info = {"settings": settings.to_dict(), "init": str(self.ckpt.folder), "mode": cfg.mode,
                "columns": settings.columns, "max_seq_len": settings.max_seq_len}
        save_checkpoint(folder, self.model.state_dict(), self.arch, cfg.task, self.heads, self.tokenizer,
                        labels=self.labels, extra={**info, **extra}, run_config=config.to_dict(cfg))


def summarize(seeds: list[int], results: list[dict], task: Task) -> dict:
    """Median, min, max and standard deviation of each dev metric over the seeds' best epochs."""
    names = [k for k, v in results[0]["dev"].items() if isinstance(v, float)]
    metrics = {}
    for name in names:
        values = [r["dev"][name] for r in results]
        metrics[name] = {"median": statistics.median(values), "min": min(values), "max": max(values),
                         "std": statistics.pstdev(values), "values": values}
    scores = [r["score"] for r in results]
    # The seed whose score is the (lower) median: an actual run, not an interpolation.
    median_seed = seeds[sorted(range(len(seeds)), key=lambda i: scores[i])[(len(seeds) - 1) // 2]]
    return {"task": task.name, "selection_metric": task.selection_metric, "seeds": seeds,
            "median_seed": median_seed, "metrics": metrics,
            "runs": [{"seed": s, "best_epoch": r["epoch"], **r["dev"]} for s, r in zip(seeds, results)]}
