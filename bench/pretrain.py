"""bertcli's pretraining step against Hugging Face BertForPreTraining (SDPA), in one process.

    PYTHONPATH=src .venv/bin/python bench/pretrain.py [--dtypes fp32 bf16] [--corpus CORPUS]
        [--rounds 6] [--steps 4] [--check-steps 300] [--memory] [--compile]

Both models start from the same weights and train on the same batches with the same AdamW
(foreach on CPU, fused on CUDA), gradient clipping at 1.0 and masking (15 %, at most 20 predictions
per sequence). Throughput rounds are interleaved (bertcli, HF, bertcli, HF, ...) and the median per
model is printed with the ratio. Sizes default to the issue's: 4 layers, hidden 256, 4 heads,
vocab 8000, sequence 128, batch 32.

  batches    `full`: synthetic full-length sequences (no padding); with --corpus also `corpus`:
             real batches from a build-corpus folder (padded to the longest in each batch).
  --check-steps N   dropout 0, fp32 and the requested dtypes: per-step losses of both models over N
                    steps; prints the largest relative difference and the difference at step N.
  --memory   peak resident memory during 3 steps of each model (peak reset after the model, its
             optimizer and the batches exist), each in a fresh child process (CPU; Linux's
             VmHWM), or max_memory_allocated (CUDA).
  --compile  also both models under torch.compile (compile times printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bertcli.config import OptimConfig  # noqa: E402
from bertcli.model import BertConfig, BertForPretraining  # noqa: E402
from bertcli.model.heads import IGNORE_INDEX  # noqa: E402
from bertcli.hf.bert_weights import config_to_hf, state_to_hf  # noqa: E402
from bertcli.stages.pretrain import pretraining_losses, unpadded  # noqa: E402
from bertcli.train.evaluation import to_device  # noqa: E402
from bertcli.train.loop import train_step  # noqa: E402
from bertcli.train.optim import make_optimizer  # noqa: E402


def model_config(args, dropout: float) -> BertConfig:
    return BertConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.heads,
                      intermediate_size=4 * args.hidden, max_position_embeddings=max(512, args.seq),
                      dropout=dropout, attention_dropout=dropout)


def models(args, dropout: float, device: torch.device):
    """bertcli's model and transformers' BertForPreTraining with identical weights."""
    from transformers import BertConfig as HFConfig, BertForPreTraining

    torch.manual_seed(0)
    config = model_config(args, dropout)
    ours = BertForPretraining(config)
    theirs = BertForPreTraining(HFConfig(**config_to_hf(config, "pretraining", []), attn_implementation="sdpa"))
    missing, unexpected = theirs.load_state_dict(state_to_hf(ours.state_dict(), config, "pretraining"), strict=False)
    # The decoder is tied to the word embeddings (and its bias to cls.predictions.bias) in both models.
    assert not unexpected and all("position_ids" in k or ".decoder." in k for k in missing), (missing, unexpected)
    assert theirs.cls.predictions.decoder.weight is theirs.bert.embeddings.word_embeddings.weight
    return ours.to(device), theirs.to(device)


def synthetic_batches(args, count: int) -> list[dict[str, np.ndarray]]:
    """Full-length [CLS] A [SEP] B [SEP] sequences, 15 % of positions masked (at most 20)."""
    rng = np.random.default_rng(1)
    B, T, P = args.batch, args.seq, min(20, round(0.15 * args.seq))
    out = []
    for _ in range(count):
        ids = rng.integers(5, args.vocab, (B, T))
        a_len = rng.integers(1, T - 3, B)
        ids[:, 0] = 2
        ids[np.arange(B), a_len + 1] = 3
        ids[:, -1] = 3
        positions = np.sort(np.stack([rng.choice(np.arange(1, T - 1), P, replace=False) for _ in range(B)]), 1)
        labels = np.take_along_axis(ids, positions, 1)
        ids[np.arange(B)[:, None], positions] = 4
        out.append({"input_ids": ids, "token_type_ids": (np.arange(T) > a_len[:, None] + 1).astype(np.int64),
                    "attention_mask": np.ones((B, T), np.int64), "mlm_positions": positions,
                    "mlm_labels": labels, "next_sentence_label": rng.integers(0, 2, B)})
    return out


def corpus_batches(args, count: int) -> list[dict[str, np.ndarray]]:
    from bertcli.data.shards import CorpusReader

    reader = CorpusReader(args.corpus, "train")
    rng = np.random.default_rng(2)
    return [reader.batch(rng.choice(len(reader), args.batch, replace=False)) for _ in range(count)]


def ours_batch(batch, device):
    return {**to_device(unpadded(batch), device), "mlm_share": 1.0, "nsp_share": 1.0}


def hf_batch(batch, device):
    """Hugging Face's format: (B, T) labels, -100 except at the masked positions."""
    B, T = batch["input_ids"].shape
    labels = np.full((B, T), IGNORE_INDEX, np.int64)
    valid = batch["mlm_labels"] != IGNORE_INDEX
    labels[np.nonzero(valid)[0], batch["mlm_positions"][valid]] = batch["mlm_labels"][valid]
    return to_device({"input_ids": batch["input_ids"], "token_type_ids": batch["token_type_ids"],
                      "attention_mask": batch["attention_mask"], "labels": labels,
                      "next_sentence_label": batch["next_sentence_label"]}, device)


def hf_losses(model, batch):
    out = model(**batch)
    return {"loss": out.loss}


class Trainer:
    """One model, its optimizer and its batch format: `step(batch)` is one training step."""

    def __init__(self, name, model, device, dtype, to_batch, losses):
        self.name, self.model, self.device, self.dtype = name, model, device, dtype
        self.optimizer = make_optimizer(model, OptimConfig(lr=1e-4))
        self.to_batch, self.losses = to_batch, losses

    def step(self, batch) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = 1e-4
        self.model.train()
        out, _, _ = train_step(self.model, self.optimizer, [self.to_batch(batch, self.device)], self.losses,
                               self.dtype, grad_clip=1.0)
        return float(out["loss"])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(trainers, batches, rounds: int, steps: int) -> dict[str, list[float]]:
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    rates = {t.name: [] for t in trainers}
    for t in trainers:  # warm-up (and compilation)
        for i in range(2):
            t.step(batches[i % len(batches)])
    k = 0
    for _ in range(rounds):
        for t in trainers:
            sync(t.device)
            start = time.perf_counter()
            for i in range(steps):
                t.step(batches[(k + i) % len(batches)])
            sync(t.device)
            rates[t.name].append(sum(tokens[(k + i) % len(batches)] for i in range(steps)) / (time.perf_counter() - start))
        k += steps
    return rates


def loss_check(args, device, dtype: str, batches) -> dict:
    ours, theirs = models(args, 0.0, device)
    a = Trainer("bertcli", ours, device, dtype, ours_batch, pretraining_losses)
    b = Trainer("hf", theirs, device, dtype, hf_batch, hf_losses)
    la, lb = [], []
    for i in range(args.check_steps):
        batch = batches[i % len(batches)]
        la.append(a.step(batch))
        lb.append(b.step(batch))
    rel = [abs(x - y) / abs(y) for x, y in zip(la, lb)]
    return {"dtype": dtype, "steps": len(rel), "max_rel_diff": max(rel), "first_loss": [la[0], lb[0]],
            "last_loss": [la[-1], lb[-1]], "last_rel_diff": rel[-1]}


def command_vs_step(args, device) -> None:
    """`bertcli pretrain` itself (data loading, logging, a checkpoint included) against the bare step on
    the same corpus, model and batch size, alternating command run / step rounds."""
    import tempfile

    command_rates, step_rates, peaks = [], [], []
    batches = corpus_batches(args, 8)
    for rep in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "bertcli", "pretrain", "--corpus", args.corpus, "--out", f"{tmp}/run",
                   "--preset", f"L{args.layers}-H{args.hidden}", "--set", f"model.num_heads={args.heads}",
                   "--set", f"train.max_steps={args.command}", "--set", f"train.batch_size={args.batch}",
                   "--set", "train.log_every=10", "--set", f"train.save_every={args.command}",
                   "--set", "runtime.progress=none", "--set", f"runtime.device={args.device}",
                   "--set", f"runtime.dtype={args.dtypes[0]}", "--set", f"runtime.threads={torch.get_num_threads()}"]
            subprocess.run(cmd, check=True, capture_output=True)
            rows = [json.loads(line) for line in open(f"{tmp}/run/metrics.jsonl")]
            train = [r for r in rows if r["split"] == "train"]
            command_rates += [r["tokens_per_s"] for r in train[1:]]  # the first window holds warm-up
            peaks.append(max(r["peak_memory_mib"] for r in train))
        ours, _ = models(args, 0.1, device)
        trainer = Trainer("bertcli", ours, device, args.dtypes[0], ours_batch, pretraining_losses)
        step_rates += throughput([trainer], batches, args.rounds, args.steps)["bertcli"]
    command, step = statistics.median(command_rates), statistics.median(step_rates)
    print(f"{args.dtypes[0]} corpus: pretrain command {command:,.0f} tok/s ({min(command_rates):,.0f}-"
          f"{max(command_rates):,.0f}), bare step {step:,.0f} tok/s ({min(step_rates):,.0f}-{max(step_rates):,.0f}): "
          f"{command / step:.1%}; command peak memory {max(peaks):,.0f} MiB (whole process)")
    mem = memory(args, args.dtypes[0], "corpus")
    print(f"bare step peak memory (fresh process, whole process): bertcli {mem['bertcli']['peak_mib']:,.0f} MiB")


def cpu_check(args, steps: int) -> dict:
    """bertcli on args.device against bertcli on the CPU: same weights, batches, fp32, no dropout."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    batches = synthetic_batches(args, steps)
    losses = {}
    for name in ("cpu", args.device):
        device = torch.device(name)
        ours, _ = models(args, 0.0, device)
        trainer = Trainer("bertcli", ours, device, "fp32", ours_batch, pretraining_losses)
        losses[name] = [trainer.step(b) for b in batches]
    rel = [abs(a - b) / abs(a) for a, b in zip(losses["cpu"], losses[args.device])]
    return {"steps": steps, "max_rel_diff": max(rel), "cpu": losses["cpu"][-1], args.device: losses[args.device][-1]}


def memory_child(args) -> None:
    """Child process: a few steps of one model; prints its peak memory (MiB) as JSON."""
    device = torch.device(args.device)
    batches = synthetic_batches(args, 3) if args.memory_batches == "full" else corpus_batches(args, 3)
    if args.memory_child == "bertcli":  # transformers is not even imported: only what pretrain has
        torch.manual_seed(0)
        ours = BertForPretraining(model_config(args, 0.1)).to(device)
        trainer = Trainer("bertcli", ours, device, args.memory_dtype, ours_batch, pretraining_losses)
    else:
        theirs = models(args, 0.1, device)[1]
        trainer = Trainer("hf", theirs, device, args.memory_dtype, hf_batch, hf_losses)
    before = rss_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:  # 5: reset the peak resident size (Linux)
        handle.write("5")
    for batch in batches:
        trainer.step(batch)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else rss_mib("VmHWM")
    print(json.dumps({"peak_mib": peak, "before_steps_mib": before}))


def rss_mib(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def memory(args, dtype: str, kind: str) -> dict[str, dict]:
    out = {}
    for name in ("bertcli", "hf"):
        cmd = [sys.executable, __file__, "--memory-child", name, "--memory-dtype", dtype, "--memory-batches", kind,
               "--device", args.device, "--layers", str(args.layers), "--hidden", str(args.hidden),
               "--heads", str(args.heads), "--vocab", str(args.vocab), "--seq", str(args.seq),
               "--batch", str(args.batch), "--threads", str(args.threads)]
        if args.corpus:
            cmd += ["--corpus", args.corpus]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=4, help="Steps per timed round.")
    parser.add_argument("--corpus", default="", help="A build-corpus folder for real-length batches.")
    parser.add_argument("--check-steps", type=int, default=0)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--command", type=int, default=0, help="Steps per `bertcli pretrain` run to compare "
                        "with the bare step on --corpus, then exit.")
    parser.add_argument("--cpu-check", type=int, default=0, help="Steps of bertcli on --device vs on the CPU, "
                        "then exit (non-zero above 1e-4 relative).")
    parser.add_argument("--memory-child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--memory-dtype", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--memory-batches", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args)
    device = torch.device(args.device)
    if args.cpu_check:
        result = cpu_check(args, args.cpu_check)
        print(f"{args.device} vs cpu losses: {json.dumps(result)}")
        sys.exit(0 if result["max_rel_diff"] < 1e-4 else 1)
    if args.command:
        return command_vs_step(args, device)
    print(f"device {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; L{args.layers} "
          f"H{args.hidden} heads {args.heads} vocab {args.vocab} seq {args.seq} batch {args.batch}")
    kinds = {"full": synthetic_batches(args, 8)}
    if args.corpus:
        kinds["corpus"] = corpus_batches(args, 8)
        fill = np.mean([b["attention_mask"].mean() for b in kinds["corpus"]])
        print(f"corpus batches: {fill:.1%} of padded positions are real tokens")
    for dtype in args.dtypes:
        for kind, batches in kinds.items():
            ours, theirs = models(args, 0.1, device)
            trainers = [Trainer("bertcli", ours, device, dtype, ours_batch, pretraining_losses),
                        Trainer("hf", theirs, device, dtype, hf_batch, hf_losses)]
            if args.compile:
                compiled = models(args, 0.1, device)[0]
                start = time.perf_counter()
                trainer = Trainer("bertcli+compile", torch.compile(compiled), device, dtype, ours_batch,
                                  pretraining_losses)
                trainer.step(batches[0])
                print(f"  bertcli compile + first step: {time.perf_counter() - start:.1f} s")
                trainers.insert(1, trainer)
                hf_compiled = models(args, 0.1, device)[1]
                start = time.perf_counter()
                trainer = Trainer("hf+compile", torch.compile(hf_compiled), device, dtype, hf_batch, hf_losses)
                trainer.step(batches[0])
                print(f"  hf compile + first step: {time.perf_counter() - start:.1f} s")
                trainers.append(trainer)
            rates = throughput(trainers, batches, args.rounds, args.steps)
            hf = statistics.median(rates["hf"])
            line = "  ".join(f"{name} {statistics.median(r):,.0f} tok/s ({min(r):,.0f}-{max(r):,.0f}) "
                             f"x{statistics.median(r) / hf:.2f}" for name, r in rates.items() if name != "hf")
            print(f"{dtype:>4} {kind:>6}: hf {hf:,.0f} tok/s ({min(rates['hf']):,.0f}-{max(rates['hf']):,.0f})  {line}")
            if args.memory:
                mem = memory(args, dtype, kind)
                step = {k: m["peak_mib"] - m["before_steps_mib"] for k, m in mem.items()}
                print(f"{dtype:>4} {kind:>6}: peak memory of the steps (above the process before them): bertcli "
                      f"{step['bertcli']:,.0f} MiB, hf {step['hf']:,.0f} MiB; whole process: bertcli "
                      f"{mem['bertcli']['peak_mib']:,.0f} MiB, hf {mem['hf']['peak_mib']:,.0f} MiB")
        if args.check_steps:
            batches = kinds.get("corpus", kinds["full"])
            print(f"{dtype:>4} losses: {json.dumps(loss_check(args, device, dtype, batches))}")


if __name__ == "__main__":
    main()
