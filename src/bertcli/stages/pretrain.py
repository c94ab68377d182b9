"""`bertcli pretrain`: masked LM + next sentence prediction on a corpus folder.

Run folder:
  manifest.json, config.yaml   the resolved config (what --resume continues)
  metrics.jsonl                one line per logged step ("split": "train") and per evaluation ("eval")
  steps/step-NNNNNNNN/         a full checkpoint plus train_state.pt: enough to resume exactly
  final/                       the finished model (weights, model.json, tokenizer)
"""

from __future__ import annotations

import difflib
import math
import signal
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from bertcli import artifacts, config, exits
from bertcli.checkpoint import load_checkpoint, save_checkpoint
from bertcli.config import ModelSpec, PretrainConfig, load_config
from bertcli.data.shard_integrity import verify_split
from bertcli.data.shards import CorpusReader, corpus_splits
from bertcli.disk_space import free_bytes, human_bytes
from bertcli.errors import UserError
from bertcli.model import BertConfig, BertForPretraining, preset_names, preset_shape
from bertcli.model.config import BLOCKS
from bertcli.model.electra import ELECTRA_HEADS, ElectraForPretraining, generator_config
from bertcli.model.heads import IGNORE_INDEX
from bertcli.runtime import (StopRequest, barrier, configure, console, grad_scaler, hardware, init_distributed, is_main,
                             pick_device, seed_everything, sum_over_ranks, warn_if_slow_dtype)
from bertcli.train import events
from bertcli.tokenizer import load_tokenizer
from bertcli.train.evaluation import evaluate_pretraining, to_device
from bertcli.train.loop import RunState, TrainJob, append_metrics, train_loop, truncate_metrics
from bertcli.train.optim import make_optimizer
from bertcli.train.sampling import EpochBatches
from bertcli.train.schedule import warmup_steps
from bertcli.train.prefetch import Prefetcher
from bertcli.folder_lock import lock_output, writes_output
from bertcli.train.state import load_train_state, rng_streams, save_train_state

# Keys that may differ between a run and its --resume: where it lives, speed, logging, length.
RESUMABLE_CHANGES = ("out", "train.max_steps", "train.log_every", "train.save_every", "train.eval_every",
                     "train.eval_examples", "train.max_tokens", "train.max_seconds", "train.max_bad_steps",
                     "train.on_divergence", "train.keep_last", "verify_corpus", "runtime.")


def model_config(spec: ModelSpec, vocab_size: int, pad_id: int) -> BertConfig:
    sizes = {key: getattr(spec, key) for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size")}
    try:
        return BertConfig.from_preset(spec.preset, block=spec.block or "bert", vocab_size=vocab_size,
                                      pad_token_id=pad_id, max_position_embeddings=spec.max_position_embeddings,
                                      dropout=spec.dropout, attention_dropout=spec.attention_dropout, **sizes,
                                      **spec.block_overrides())
    except KeyError:
        close = difflib.get_close_matches(spec.preset, preset_names(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"model.preset: unknown preset {spec.preset!r}{hint}; "
                        f"choose tiny, mini, small, medium, base, large or L{{2..12}}-H{{128,256,512,768}}") from None
    except ValueError as exc:
        shape = {**preset_shape(spec.preset), **{key: value for key, value in sizes.items() if value is not None}}
        if shape["hidden_size"] % shape["num_heads"]:
            raise UserError(f"model.hidden_size {shape['hidden_size']} is not divisible by model.num_heads "
                            f"{shape['num_heads']}; choose sizes where it is") from None
        raise UserError(f"model: {exc}") from None


def pretraining_model(arch: BertConfig, cfg: PretrainConfig):
    """BERT's MLM(+NSP) model, or ELECTRA's generator and discriminator around the same encoder."""
    if cfg.objective == "mlm":
        return BertForPretraining(arch)
    try:
        generator = generator_config(arch, cfg.electra.generator_fraction, cfg.electra.generator_heads)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return ElectraForPretraining(arch, generator, cfg.electra.discriminator_weight)


def objective_of(heads: list[str]) -> str | None:
    """The objective a checkpoint was pretrained with, from its heads (None: an encoder alone)."""
    if "discriminator" in heads:
        return "electra"
    return "mlm" if "mlm" in heads else None


def check_init_matches(init, cfg: PretrainConfig) -> None:
    """--init-from continues a checkpoint's own objective and block: training ELECTRA's heads from an MLM
    checkpoint (or the reverse) would silently start parts of the model from scratch, and another block
    would not even have the same weights."""
    saved = objective_of(init.heads)
    if saved is not None and saved != cfg.objective:
        raise UserError(f"--init-from {init.folder}: pretrained with objective {saved}, this run has objective "
                        f"{cfg.objective}; set --objective {saved}, or start anew without --init-from")
    ours = init.config.block_settings()
    asked = {**(BLOCKS[cfg.model.block] if cfg.model.block else {}), **cfg.model.block_overrides()}
    differ = [f"model.{key}={value!r} (the checkpoint's is {ours[key]!r})" for key, value in asked.items()
              if key in ours and value != ours[key]]
    if differ:
        raise UserError(f"--init-from {init.folder}: another block than the checkpoint's: {'; '.join(differ)}; "
                        f"leave model.block and its settings unset to continue the checkpoint's, or start anew")


def resume_point(run: Path, cfg: PretrainConfig):
    """The checkpoint a --resume continues from, after checking the run may be continued."""
    steps = artifacts.step_dirs(run)
    if not steps:
        raise UserError(f"{run}: no steps/ checkpoint to resume from; run without --resume "
                        f"(set train.save_every to save checkpoints along the way)")
    check_resumable(run, cfg)
    if is_main():
        artifacts.remove_stale_step_staging(run)
    checkpoint = load_checkpoint(steps[-1])
    step = checkpoint.extra.get("step", 0)
    if step >= cfg.train.max_steps and (run / "final").is_dir():
        raise UserError(f"{run}: already at step {step}; raise train.max_steps to train further")
    return checkpoint


def check_fits(folder: str, reader: CorpusReader, arch: BertConfig) -> None:
    if reader.max_seq_len > arch.max_position_embeddings:
        raise UserError(f"{folder}: examples are {reader.max_seq_len} tokens but the model has "
                        f"{arch.max_position_embeddings} positions; raise model.max_position_embeddings "
                        f"or rebuild the corpus with a smaller --max-seq-len")
    if reader.vocab_size > arch.vocab_size:
        raise UserError(f"{folder}: vocabulary of {reader.vocab_size} exceeds the model's {arch.vocab_size}")


def check_resumable(run: Path, cfg: PretrainConfig) -> None:
    artifacts.require(run, "pretrain-run")
    saved_yaml = yaml.safe_load((run / artifacts.CONFIG).read_text(encoding="utf-8"))
    saved = config.from_dict(PretrainConfig, saved_yaml)
    old, new = _flatten(config.to_dict(saved)), _flatten(config.to_dict(cfg))
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key) and not key.startswith(RESUMABLE_CHANGES):
            raise UserError(f"--resume: {key} was {old.get(key)!r} in {run}, now {new.get(key)!r}; "
                            f"resume with the run's own settings or start a new --out")


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def open_eval_reader(cfg: PretrainConfig) -> CorpusReader | None:
    if cfg.eval_corpus:
        return CorpusReader(cfg.eval_corpus, "eval" if "eval" in corpus_splits(cfg.eval_corpus) else "train")
    if "eval" in corpus_splits(cfg.corpus):
        return CorpusReader(cfg.corpus, "eval")
    return None


def check_resume_target(out: str | Path) -> None:
    """--resume continues a pretraining run: say so before reading anything else from `out`."""
    if not str(out):
        raise UserError("pretrain --resume: no run folder; pass --out RUN (a folder from `bertcli pretrain`)")
    try:
        artifacts.require(out, "pretrain-run")
    except UserError as exc:
        raise UserError(f"--resume: {exc}; without --resume a new run starts") from None


def load_run_config(path: str | Path | None, sets: list[str], flags: dict, resume: bool) -> PretrainConfig:
    """The config a run starts or resumes with: `--resume` alone continues the run in --out with the
    settings of its own config.yaml (a recipe and flags given beside it still override them)."""
    out = flags.get("out")
    if resume and out is not None:
        check_resume_target(out)  # the folder's kind first, then its config.yaml
        saved = Path(out) / artifacts.CONFIG
        if path is None and saved.is_file():
            path = saved
    return load_config(PretrainConfig, path, sets, flags)


@writes_output
def run(cfg: PretrainConfig, resume: bool = False) -> Path:
    recipe = PretrainRecipe(cfg, resume)
    recipe.setup()
    with events.tensorboard(recipe.metrics_path, recipe.run_dir / "tensorboard", cfg.runtime.tensorboard and is_main()):
        recipe.train()
        result = recipe.finish()
    if result is not None and "disc_auc" in result:
        console.print(f"held-out: replaced-token accuracy {result['disc_accuracy']:.4f}, AUC {result['disc_auc']:.4f}; "
                      f"generator MLM accuracy {result['mlm_accuracy']:.4f} ({result['examples']} examples)")
    elif result is not None:
        nsp = f"NSP accuracy {result['nsp_accuracy']:.4f} " if "nsp_accuracy" in result else ""
        console.print(f"held-out: MLM accuracy {result['mlm_accuracy']:.4f}, perplexity {result['perplexity']:.2f}, "
                      f"{nsp}({result['examples']} examples)")
    console.print(f"pretrained model: {recipe.run_dir / 'final'}")
    return recipe.run_dir / "final"


class PretrainRecipe:
    """One pretraining run in three steps: `setup` (inputs checked, model, optimizer and run folder
    ready, or restored from the last checkpoint), `train` (the loop, saving and evaluating on
    schedule; a signal ends it with a checkpoint) and `finish` (final/ and the held-out figures).

    `self.state` is the one RunState of the run: the loop advances it, checkpoints record it, and a
    rewind replaces it with the checkpoint's (the loop goes on with the object `rewind` returns)."""

    def __init__(self, cfg: PretrainConfig, resume: bool = False):
        self.cfg, self.resume = cfg, resume
        self.run_dir = Path(cfg.out)
        self.metrics_path = self.run_dir / artifacts.METRICS
        self.state = RunState()

    # ------------------------------------------------------------------------- setup

    def setup(self) -> None:
        cfg = self.cfg
        self._read_inputs()
        self._start_runtime()
        resume_from = resume_point(self.run_dir, cfg) if self.resume else None
        if resume_from is None:  # refuse a wrong --out before any weights are read
            artifacts.check_output_target(self.run_dir, "pretrain-run",
                                          inputs=[cfg.corpus, cfg.eval_corpus, cfg.init_from])
            if artifacts.step_dirs(self.run_dir) or (self.run_dir / "final").exists():
                raise UserError(f"{self.run_dir}: holds a run already; continue it with --resume or choose another --out")
        self._build_model(resume_from)
        if is_main():  # one rank reads the corpus through; the others wait at the run folder's barrier
            self._verify_corpus()
        self._open_run_folder(resume_from)
        # Without NSP (an MLM-only corpus, or ELECTRA) the pooler and NSP head get no gradient; DDP must
        # be told, or it waits for their gradients forever.
        unused = not self.reader.has_nsp or cfg.objective == "electra"
        wrapped = (DistributedDataParallel(self.model, find_unused_parameters=unused)
                   if self.world > 1 else self.model)
        self.compiled = torch.compile(wrapped) if cfg.runtime.compile else wrapped
        self.total = horizon(cfg, self.reader)
        self.batches = EpochBatches(len(self.reader), cfg.train.batch_size, cfg.train.seed)
        self.micro = self.per_rank // cfg.train.grad_accum
        if is_main():
            self._warn_if_disk_too_small()

    def checkpoint_bytes(self, with_state: bool) -> int:
        """About what one checkpoint takes: the weights, plus AdamW's two moments per weight when it
        is resumable (so about 3x the weights)."""
        weights = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        moments = 2 * sum(p.numel() * 4 for p in self.model.parameters() if p.requires_grad)
        return weights + (moments if with_state else 0)

    def _warn_if_disk_too_small(self) -> None:
        """Before the first step: can the disk hold the checkpoints the run will keep at once?"""
        cfg = self.cfg
        kept = 0
        if cfg.train.save_every:
            saves = math.ceil(max(self.total - self.state.step, 0) / cfg.train.save_every)
            # keep_last of them, plus the next one while it is written, before the oldest goes
            kept = min(saves, cfg.train.keep_last + 1) if cfg.train.keep_last else saves
        resumable = self.checkpoint_bytes(with_state=True)
        needed = kept * resumable + self.checkpoint_bytes(with_state=False)
        free = free_bytes(self.run_dir)
        if free is not None and free < needed:
            console.print(f"[yellow]warning:[/] {self.run_dir}: {human_bytes(free)} free, but {kept} resumable "
                          f"checkpoint(s) of about {human_bytes(resumable)} and the final model "
                          f"need about {human_bytes(needed)}; free space, lower train.keep_last, or choose "
                          f"another --out")

    def _read_inputs(self) -> None:
        cfg = self.cfg
        if self.resume:
            check_resume_target(cfg.out)
            lock_output(cfg.out)  # two --resume of one run would write the same steps/ and metrics.jsonl
        if not cfg.corpus:
            raise UserError("pretrain: no corpus; pass --corpus CORPUS (a folder from `bertcli build-corpus`)")
        if not cfg.out:
            raise UserError("pretrain: no run folder; pass --out RUN")
        self.reader = CorpusReader(cfg.corpus, "train")
        self.eval_reader = open_eval_reader(cfg)
        self.tokenizer = load_tokenizer(Path(cfg.corpus) / "tokenizer")
        if self.eval_reader is not None and self.eval_reader.tokenizer_fingerprint != self.reader.tokenizer_fingerprint:
            raise UserError(f"{cfg.eval_corpus}: built with a different tokenizer than {cfg.corpus}; "
                            f"rebuild it with --tokenizer {cfg.corpus}/tokenizer")

    def _verify_corpus(self) -> None:
        cfg = self.cfg
        for folder, reader in ((cfg.corpus, self.reader), (cfg.eval_corpus or cfg.corpus, self.eval_reader)):
            if reader is None:
                continue
            result = verify_split(folder, reader.split, reader.vocab_size, cfg.verify_corpus)
            if result["files"]:
                console.print(f"verified {result['files']} shard files of {folder} ({reader.split}) against its "
                              f"manifest in {result['seconds']:.1f} s")

    def _start_runtime(self) -> None:
        cfg = self.cfg
        self.rank, self.world = init_distributed(cfg.runtime.device)
        self.per_rank = check_split(cfg, self.world)
        configure(cfg.runtime.threads)
        device = pick_device(cfg.runtime.device)
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        warn_if_slow_dtype(device, cfg.runtime.dtype)
        seed_everything(cfg.train.seed + self.rank)  # ranks draw different dropout masks

    def _build_model(self, resume_from) -> None:
        cfg = self.cfg
        # On resume the weights come from the step checkpoint, so --init-from is not read again.
        init = load_checkpoint(cfg.init_from) if cfg.init_from and resume_from is None else None
        if resume_from is not None:
            arch = resume_from.config
        elif init is not None:
            if init.tokenizer().fingerprint() != self.reader.tokenizer_fingerprint:
                raise UserError(f"{cfg.corpus}: built with a different tokenizer than {cfg.init_from}; rebuild "
                                f"the corpus with --tokenizer {init.folder}/tokenizer")
            check_init_matches(init, cfg)
            arch = BertConfig.from_dict({**init.config.to_dict(), "dropout": cfg.model.dropout,
                                         "attention_dropout": cfg.model.attention_dropout})
        else:
            arch = model_config(cfg.model, self.tokenizer.vocab_size, self.tokenizer.pad_id)
        for folder, corpus in ((cfg.corpus, self.reader), (cfg.eval_corpus or cfg.corpus, self.eval_reader)):
            if corpus is not None:
                check_fits(folder, corpus, arch)
        self.arch = arch
        self.model = pretraining_model(arch, cfg)
        if init is not None:
            report_init(self.model, init)
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.scaler = grad_scaler(self.device, cfg.runtime.dtype)

    def _open_run_folder(self, resume_from) -> None:
        cfg = self.cfg
        if resume_from is not None:
            self.model.load_state_dict(resume_from.state_dict())
            self.state = load_train_state(resume_from.folder, self.optimizer, self.rank, self.world, self.scaler)
            if is_main():
                truncate_metrics(self.metrics_path, self.state.step)
            console.print(f"resuming {self.run_dir} from step {self.state.step}")
        elif is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.metrics_path.unlink(missing_ok=True)
        # Written again on resume, so that the run's config.yaml always says how it was last continued
        # (a resume that raised train.max_steps stays raised for the next plain --resume).
        if is_main():
            artifacts.write_manifest(self.run_dir, "pretrain-run", config.to_dict(cfg), corpus=str(cfg.corpus),
                                     hardware=hardware(self.device))
        barrier()

    # ------------------------------------------------------------------------- train

    def train(self) -> None:
        cfg = self.cfg
        job = TrainJob(total_steps=self.total, peak_lr=cfg.optim.lr,
                       warmup=warmup_steps(self.total, cfg.optim.warmup_steps, cfg.optim.warmup_ratio),
                       grad_clip=cfg.optim.grad_clip, log_every=cfg.train.log_every,
                       # Under torchrun, batches are built on the main thread: building one holds a collective.
                       micro_batches=(Prefetcher(self.micro_batches) if cfg.runtime.prefetch and self.world == 1
                                      else self.micro_batches),
                       losses=electra_losses if cfg.objective == "electra" else pretraining_losses,
                       after_step=self.after_step, metrics_path=self.metrics_path,
                       dtype=cfg.runtime.dtype, description="pretrain", schedule=cfg.optim.schedule,
                       max_tokens=cfg.train.max_tokens, max_seconds=cfg.train.max_seconds,
                       max_bad_steps=cfg.train.max_bad_steps,
                       rewind=self.rewind if cfg.train.on_divergence == "rewind" else None)
        with StopRequest() as stop:
            job.stop_requested = stop
            self.state = train_loop(self.compiled, self.optimizer, job, self.state, cfg.runtime.progress, self.scaler)
        if self.state.stopped and not self.step_folder(self.state.step).is_dir():
            self.save(self.step_folder(self.state.step), with_state=True)
        if self.state.stopped == "signal":  # checkpoint saved: now end as any interrupted command does
            console.print(f"saved step {self.state.step}; continue with: bertcli pretrain --out {self.run_dir} --resume")
            raise KeyboardInterrupt if stop.received == signal.SIGINT else exits.Terminated()

    def micro_batches(self, step: int) -> list[dict]:
        reader, per_rank, micro = self.reader, self.per_rank, self.micro
        indices = self.batches.indices(step)
        epochs = self.batches.epochs(step)
        mine = slice(self.rank * per_rank, (self.rank + 1) * per_rank)  # this rank's share of the step
        parts = [reader.batch(indices[mine][i:i + micro], epochs[mine][i:i + micro]) for i in range(0, per_rank, micro)]
        # Each micro-batch's share of the step (all ranks), so that accumulated losses equal the
        # losses of one big batch: MLM is a mean over the step's masked tokens, NSP over its examples.
        # Masks may be drawn here (dynamic masking), so the count is summed over ranks (a collective).
        masked = [int((part["mlm_labels"] != IGNORE_INDEX).sum()) for part in parts]
        total_masked = max(sum_over_ranks(sum(masked), self.device), 1)
        tokens = [int(part["attention_mask"].sum()) for part in parts]
        # ELECTRA's replaced-token loss is a mean over the step's real tokens.
        total_tokens = max(sum_over_ranks(sum(tokens), self.device), 1) if self.cfg.objective == "electra" else 1
        return [{**to_device(unpadded(part), self.device), "mlm_share": count / total_masked,
                 "nsp_share": len(part["input_ids"]) / len(indices), "token_share": real / total_tokens,
                 "tokens": real}
                for part, count, real in zip(parts, masked, tokens)]

    def after_step(self, done: int) -> None:
        cfg = self.cfg
        # The last step gets a resumable checkpoint too, so that a finished run can be extended
        # later (--resume with a larger train.max_steps).
        if cfg.train.save_every and (done % cfg.train.save_every == 0 or done == self.total):
            self.save(self.step_folder(done), with_state=True)
            if is_main():
                artifacts.prune_steps(self.run_dir, cfg.train.keep_last)
        if self.eval_reader is not None and cfg.train.eval_every and done % cfg.train.eval_every == 0 \
                and done < self.total:
            self.evaluate(done)

    def rewind(self, bad: RunState) -> RunState:
        """After too many non-finite steps: back to the last checkpoint with half the lr."""
        steps = artifacts.step_dirs(self.run_dir)
        if not steps:
            raise UserError(f"{bad.skipped} non-finite steps, the last at step {bad.step}, and no checkpoint "
                            f"to rewind to; lower optim.lr, set train.save_every, or use runtime.dtype=fp32")
        self.model.load_state_dict(load_checkpoint(steps[-1]).state_dict())
        restored = load_train_state(steps[-1], self.optimizer, self.rank, self.world, self.scaler)
        restored.lr_scale, restored.skipped = bad.lr_scale / 2, bad.skipped
        console.print(f"[yellow]rewind:[/] non-finite steps up to step {bad.step}; back to step {restored.step} "
                      f"with lr x{restored.lr_scale:g}")
        self.state = restored
        return restored

    def evaluate(self, step: int) -> dict:
        cfg = self.cfg
        result = evaluate_pretraining(self.model, self.eval_reader, cfg.train.batch_size, cfg.train.eval_examples,
                                      cfg.runtime.dtype)
        if is_main():
            append_metrics(self.metrics_path, {"step": step, "split": "eval", **result})
        return result

    # ------------------------------------------------------------------------- save

    def step_folder(self, step: int) -> Path:
        return self.run_dir / "steps" / f"step-{step:08d}"

    def save(self, folder: Path, with_state: bool) -> None:
        rng = rng_streams() if with_state else []  # a collective: every rank takes part
        if not is_main():
            return
        with artifacts.staged_folder(folder, self.checkpoint_bytes(with_state)) as tmp:
            heads, extra = ["mlm", "nsp"], {"step": self.state.step}
            if self.cfg.objective == "electra":
                heads = ELECTRA_HEADS
                extra.update(objective="electra", generator=self.model.generator_config.to_dict(),
                             discriminator_weight=self.model.discriminator_weight)
            save_checkpoint(tmp, self.model.state_dict(), self.arch, "pretraining", heads, self.tokenizer,
                            run_config=config.to_dict(self.cfg), extra=extra)
            if with_state:
                save_train_state(tmp, self.optimizer, self.state, rng, self.scaler)

    def finish(self) -> dict | None:
        """final/ (weights only), then the held-out figures when there is an eval split."""
        self.save(self.run_dir / "final", with_state=False)
        return self.evaluate(self.state.step) if self.eval_reader is not None else None


def check_split(cfg: PretrainConfig, world: int) -> int:
    """Examples per rank and step; the step's batch must split evenly over ranks and micro-batches."""
    if cfg.train.batch_size % (world * cfg.train.grad_accum):
        raise UserError(f"train.batch_size {cfg.train.batch_size} does not split over {world} process(es) x "
                        f"train.grad_accum {cfg.train.grad_accum}; choose a multiple of {world * cfg.train.grad_accum}")
    return cfg.train.batch_size // world


def horizon(cfg: PretrainConfig, reader: CorpusReader) -> int:
    """The schedule's total steps: train.max_steps, or the steps train.max_tokens takes."""
    if not cfg.train.max_tokens:
        return cfg.train.max_steps
    return max(1, math.ceil(cfg.train.max_tokens / (cfg.train.batch_size * reader.mean_length())))


def unpadded(batch: dict) -> dict:
    """No attention mask when nothing is padded, so SDPA takes its unmasked kernel. The check is on
    the host (numpy), where the mask is made: on the device it would cost a sync every step."""
    return {**batch, "attention_mask": None} if batch["attention_mask"].all() else batch


def pretraining_losses(model: BertForPretraining, batch: dict) -> dict:
    """This micro-batch's share of the step's MLM and NSP losses (see micro_batches)."""
    mlm_share, nsp_share = batch.pop("mlm_share"), batch.pop("nsp_share")
    batch.pop("token_share", None)
    out = model(**batch)
    mlm_loss = out["mlm_loss"] * mlm_share
    if "nsp_loss" not in out:  # an MLM-only corpus
        return {"loss": mlm_loss, "mlm_loss": mlm_loss}
    nsp_loss = out["nsp_loss"] * nsp_share
    return {"loss": mlm_loss + nsp_loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss}


def electra_losses(model: ElectraForPretraining, batch: dict) -> dict:
    """This micro-batch's share of the generator's MLM loss (a mean over the step's masked tokens)
    and of the replaced-token loss and accuracy (means over the step's real tokens)."""
    mlm_share, token_share = batch.pop("mlm_share"), batch.pop("token_share")
    batch.pop("nsp_share", None)
    out = model(**batch)
    weight = model.module.discriminator_weight if hasattr(model, "module") else model.discriminator_weight
    mlm_loss, disc_loss = out["mlm_loss"] * mlm_share, out["disc_loss"] * token_share
    return {"loss": mlm_loss + weight * disc_loss, "mlm_loss": mlm_loss, "disc_loss": disc_loss,
            "disc_accuracy": out["disc_accuracy"] * token_share,
            "replaced_fraction": out["replaced_fraction"] * token_share}


def report_init(model: BertForPretraining, init) -> None:
    """Load a checkpoint's encoder, and its MLM/NSP heads when it has them; say what starts fresh."""
    state = init.state_dict()
    heads = tuple(f"{name}." for name, _ in model.named_children())
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k.startswith(heads)},
                                                strict=False)
    encoder_missing = [k for k in missing if k.startswith("bert.")]
    if encoder_missing:
        raise UserError(f"{init.folder}: encoder weights missing ({', '.join(encoder_missing[:3])} ...); "
                        f"the checkpoint is incomplete")
    fresh = sorted({k.split(".")[0] for k in missing})
    if fresh:
        console.print(f"[yellow]note:[/] {init.folder} has no {' or '.join(fresh)} head; "
                      f"{'it starts' if len(fresh) == 1 else 'they start'} from random initialisation")
