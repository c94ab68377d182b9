"""Does bertcli pretraining beat random initialisation on SST-2? (issue 9)

From a fresh clone and ../shared/data, end to end through the CLI: unlabelled pretraining text ->
tokenizer -> corpus -> pretraining within a fixed step budget -> fine-tuning on SST-2 with a few
and with all training sentences, for the pretrained model and for the same architecture at random
initialisation (a 0-step pretrain: same tokenizer, weights as initialised), each over the same grid
of learning rates and poolings (cls, mean) and several seeds. Prints the medians and writes everything
under --out:

  OUT/tok, OUT/corpus, OUT/corpus-64 and OUT/phase1 (the two-phase recipe's long sequences and
  first phase), OUT/pretrained (the run, its final/ checkpoint), OUT/scratch,
  OUT/ft/<size>-<init>-lr<lr>-<pooling>-s<seed>/ (fine-tuned runs; `bertcli eval` takes any of them),
  OUT/results.jsonl (one line per fine-tune), OUT/summary.json

No label is used anywhere before fine-tuning: the pretraining text is the *sentences* of SST-2's
training split without their labels (task-adaptive pretraining, Gururangan et al. 2020), and/or
other unlabelled text (--text).

  .venv/bin/python bench/pretraining_pays.py --out bench/out/pays-wide   # the shipped recipe (sst2-tapt-wide.yaml, L2-H256, then sst2-tapt-modern-phase2.yaml)
  .venv/bin/python bench/pretraining_pays.py --out bench/out/pays-modern --pretrain-recipe recipes/pretrain/sst2-tapt-modern.yaml \
      --phase2-recipe recipes/pretrain/sst2-tapt-modern-phase2.yaml   # the modern block at BERT-tiny's size
  .venv/bin/python bench/pretraining_pays.py --out bench/out/pays4 --pretrain-recipe recipes/pretrain/sst2-tapt.yaml \
      --phase2-recipe recipes/pretrain/sst2-tapt-phase2.yaml   # BERT's block (bench/RESULTS.md part 3; --steps from its recipes: 24,000)
  .venv/bin/python bench/pretraining_pays.py --steps 600 --out bench/out/pays-short --sizes 2000
  .venv/bin/python bench/pretraining_pays.py --phase2-seq-len 0 --steps 11000 --threads 1   # the one-phase recipe
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BERTCLI = [sys.executable, "-m", "bertcli"]


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    text = prepare_text(args.text, data, out)
    log(f"pretraining text: {', '.join(str(p) for p in text)}")
    tok, corpus = out / "tok", out / "corpus"
    if not tok.exists():
        run("tokenize", "train", "--input", *text, "--out", tok, "--vocab-size", args.vocab_size, "--lowercase")
    build_corpus(args, text, tok, corpus, args.seq_len)
    pretrained, scratch = out / "pretrained", out / "scratch"
    settings = sum((["--set", s] for s in args.model_set), [])
    model = [*(["--preset", args.preset] if args.preset else []), *settings]
    started = time.perf_counter()
    if not args.phase2_seq_len:
        pretrain(args, args.pretrain_recipe, pretrained, corpus, model, args.steps, args.batch_size, args.pretrain_lr,
                 args.budget_seconds)
    else:
        # BERT's two phases (Devlin et al. 2019, 3.1): most steps on short sequences, which are cheap and
        # leave the plateau soonest, then the rest on longer ones so that the positions fine-tuning
        # reads (half of SST-2's dev sentences are longer than 32 pieces) are trained too. Same tokens
        # a step in both phases; the budget is split in the same ratio as the steps.
        long_corpus = out / f"corpus-{args.phase2_seq_len}"
        build_corpus(args, text, tok, long_corpus, args.phase2_seq_len)
        phase2_steps = round(args.steps * args.phase2_fraction)
        phase1 = out / "phase1"
        pretrain(args, args.pretrain_recipe, phase1, corpus, model, args.steps - phase2_steps, args.batch_size,
                 args.pretrain_lr, args.budget_seconds * (1 - args.phase2_fraction))
        phase2_batch = args.batch_size * args.seq_len // args.phase2_seq_len
        # --model-set reaches phase 2 too (objective, dropout; block keys equal to phase 1's are accepted)
        pretrain(args, args.phase2_recipe, pretrained, long_corpus, ["--init-from", phase1 / "final", *settings],
                 phase2_steps, phase2_batch, args.phase2_lr, args.budget_seconds * args.phase2_fraction)
    pretrain_seconds = time.perf_counter() - started
    if not (scratch / "final").exists():
        run("pretrain", args.pretrain_recipe, "--corpus", corpus, "--out", scratch, *model, "--max-steps", 0,
            "--set", "runtime.progress=none")

    train = data / "glue/sst2/train.tsv"
    dev = data / "glue/sst2/dev.tsv"
    results_path = out / "results.jsonl"
    done = {(r["size"], r["init"], r["lr"], r.get("pooling", "cls"), r["seed"]): r for r in read_jsonl(results_path)}
    summary = {"pretrain_seconds_this_call": round(pretrain_seconds, 1), "args": vars(args), "rows": []}
    # The grid both sides search: every lr with every pooling (a random model prefers the pooled
    # [CLS], an MLM-pretrained one the token mean; each side gets its best).
    grid = [(lr, pooling) for lr in args.lrs for pooling in args.poolings]
    for size in args.sizes:
        train_file = subset(train, size, out)
        epochs = args.epochs_low if size != "full" else args.epochs_full
        for init, ckpt in (("pretrained", pretrained), ("scratch", scratch)):
            if init not in args.inits:
                continue
            scores = {}
            for point in grid:
                cheap = args.select_on_first_seed and size == "full"
                seeds = args.seeds[:1] if cheap else args.seeds
                scores[point] = [finetune(done, results_path, out, ckpt, init, size, train_file, dev, point, seed,
                                          epochs, args) for seed in seeds]
            best = max(grid, key=lambda point: statistics.median(scores[point]))
            if args.select_on_first_seed and size == "full":
                scores[best] += [finetune(done, results_path, out, ckpt, init, size, train_file, dev, best,
                                          seed, epochs, args) for seed in args.seeds[1:]]
            row = {"size": size, "init": init, "best_lr": best[0], "best_pooling": best[1],
                   "dev_accuracy_by_seed": scores[best], "median": statistics.median(scores[best]),
                   "spread": max(scores[best]) - min(scores[best]),
                   "grid_medians": {f"{lr:g}/{pooling}": statistics.median(v) for (lr, pooling), v in scores.items()}}
            summary["rows"].append(row)
            log(f"{size:>5} {init:<10} best lr {best[0]:g}, pooling {best[1]}: median dev accuracy "
                f"{row['median']:.4f} (seeds {', '.join(f'{s:.4f}' for s in scores[best])})")
    held_out = json.loads(run("eval", pretrained, "--data", corpus, "--json", capture=True))
    summary["pretrained_held_out"] = held_out
    by = {(r["size"], r["init"]): r for r in summary["rows"]}
    compared = [size for size in args.sizes if (size, "pretrained") in by and (size, "scratch") in by]
    for size in compared:  # a call that ran one side (--inits) has nothing to compare
        gap = by[(size, "pretrained")]["median"] - by[(size, "scratch")]["median"]
        summary[f"gain_{size}"] = gap
        log(f"SST-2 {size}: pretrained - random = {100 * gap:+.2f} points (medians of {len(args.seeds)} seeds)")
    log(f"held-out MLM accuracy of the pretrained model: {held_out['mlm_accuracy']:.4f}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def build_corpus(args, text: list[Path], tok: Path, folder: Path, seq_len: int) -> None:
    if not folder.exists():
        run("build-corpus", args.corpus_recipe, "--input", *text, "--tokenizer", tok, "--out", folder,
            "--max-seq-len", seq_len, "--objective", args.objective, "--masking", args.masking,
            "--dupe-factor", args.dupe_factor, "--set", "eval_fraction=0.02", "--set", f"masked_lm_prob={args.mask_prob}")


def pretrain(args, recipe: str, folder: Path, corpus: Path, start: list, steps: int, batch_size: int, lr: float,
             seconds: float) -> None:
    """One pretraining run into `folder` (continued if it was interrupted); `start` is how its model
    begins: a shape (--preset, --set) or another run's weights (--init-from)."""
    if not (folder / "final").exists() and (folder / "steps").is_dir():
        # an interrupted run (Ctrl-C, a scheduler's SIGTERM, a kill) continues exactly where it stopped
        run("pretrain", "--out", folder, "--resume", "--set", f"runtime.threads={args.threads}")
    elif not (folder / "final").exists():
        run("pretrain", recipe, "--corpus", corpus, "--out", folder, *start,
            "--max-steps", steps, "--lr", lr, "--batch-size", batch_size, "--set", f"train.max_seconds={seconds:g}",
            "--set", f"runtime.threads={args.threads}", "--set", "runtime.progress=plain")


def finetune(done: dict, results_path: Path, out: Path, ckpt: Path, init: str, size, train_file: Path, dev: Path,
             point: tuple[float, str], seed: int, epochs: float, args) -> float:
    lr, pooling = point
    key = (size, init, lr, pooling, seed)
    if key in done:
        return done[key]["best_dev_accuracy"]
    folder = out / "ft" / f"{size}-{init}-lr{lr:g}-{pooling}-s{seed}"
    started = time.perf_counter()
    if not (folder / "final").is_dir():  # a finished fine-tune (e.g. of an interrupted call) is read, not rerun
        run("finetune", args.finetune_recipe, "--init", ckpt, "--out", folder, "--train", train_file, "--dev", dev,
            "--epochs", epochs, "--lr", lr, "--seed", seed, "--pooling", pooling, "--set", "runtime.progress=none",
            "--set", f"runtime.threads={args.threads}")
    dev_rows = [r for r in read_jsonl(folder / "metrics.jsonl") if r.get("split") == "dev"]
    record = {"size": size, "init": init, "lr": lr, "pooling": pooling, "seed": seed, "epochs": epochs,
              "best_dev_accuracy": max(r["accuracy"] for r in dev_rows),
              "last_dev_accuracy": dev_rows[-1]["accuracy"], "seconds": round(time.perf_counter() - started, 1)}
    with open(results_path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    done[key] = record
    return record["best_dev_accuracy"]


def prepare_text(kinds: list[str], data: Path, out: Path) -> list[Path]:
    """Unlabelled pretraining text files; SST-2's sentences become one document each."""
    files = []
    for kind in kinds:
        if kind == "sst2":
            path = out / "sst2_train_sentences.txt"
            if not path.exists():
                lines = (data / "glue/sst2/train.tsv").read_text(encoding="utf-8").splitlines()[1:]
                # the label column is dropped here: only the text is pretraining material
                path.write_text("".join(line.split("\t")[0].strip() + "\n\n" for line in lines), encoding="utf-8")
            files.append(path)
        elif kind == "gutenberg":
            files.extend(sorted((data / "corpus/gutenberg").glob("*.txt")))
        elif kind == "wikitext":
            files.append(data / "corpus/wikitext2/valid.txt")
        else:
            raise SystemExit(f"--text {kind}: expected sst2, gutenberg or wikitext")
    return files


def subset(train: Path, size, out: Path) -> Path:
    if size == "full":
        return train
    path = out / f"sst2_train_first{size}.tsv"
    if not path.exists():
        lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:int(size) + 1]), encoding="utf-8")
    return path


def run(*args, capture: bool = False) -> str:
    command = BERTCLI + [str(a) for a in args]
    log("$ bertcli " + " ".join(str(a) for a in args))
    result = subprocess.run(command, cwd=ROOT, text=True, stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}")
    return result.stdout or ""


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench/out/pays")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--text", nargs="+", default=["sst2"], help="sst2 | gutenberg | wikitext (several mix)")
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--objective", default="mlm", choices=["mlm", "mlm_nsp"])
    p.add_argument("--masking", default="dynamic", choices=["dynamic", "static"])
    p.add_argument("--dupe-factor", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--mask-prob", type=float, default=0.15)
    p.add_argument("--corpus-recipe", default="recipes/corpus/sst2-tapt.yaml")
    # The modern block at L2-H256 (issue 19: the best of the 30-minute rows on all 67,349 sentences)
    p.add_argument("--pretrain-recipe", default="recipes/pretrain/sst2-tapt-wide.yaml")
    p.add_argument("--phase2-recipe", default="recipes/pretrain/sst2-tapt-modern-phase2.yaml")
    p.add_argument("--finetune-recipe", default="recipes/finetune/sst2.yaml")
    p.add_argument("--preset", default=None, help="the model's size (default: the pretraining recipe's)")
    p.add_argument("--model-set", nargs="*", default=[], help="extra --set for pretraining (both phases), e.g. "
                   "model.dropout=0, model.block=modern, objective=electra")
    p.add_argument("--steps", type=int, default=None, help="the schedule's length, both phases (default: the "
                   "phase-1 recipe's train.max_steps plus --phase2-fraction of the whole: 15,000 for the wide "
                   "recipe, 36,000 for the tiny modern one, 24,000 for BERT's); "
                   "--budget-seconds stops the run earlier on a slower machine. Size it to the machine: "
                   "BERT's block ran 24,000 in 30 minutes on 2026-11-27's machine, 38,000 on 2026-12-07's")
    p.add_argument("--pretrain-lr", type=float, default=1e-3)
    p.add_argument("--budget-seconds", type=float, default=1800,
                   help="pretraining's time limit (train.max_seconds), both phases together")
    p.add_argument("--phase2-seq-len", type=int, default=64,
                   help="a second pretraining phase on sequences this long (0: one phase)")
    p.add_argument("--phase2-fraction", type=float, default=0.1, help="the second phase's share of --steps")
    p.add_argument("--phase2-lr", type=float, default=5e-4,
                   help="the second phase's peak lr (its own warmup and decay, as NVIDIA's recipe)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="torch threads for pretraining (0: torch's default)")
    p.add_argument("--poolings", nargs="+", default=["cls", "mean"], choices=["cls", "mean"],
                   help="fine-tuning's sentence feature: each is a point of the grid, with each lr")
    p.add_argument("--sizes", nargs="+", default=["2000", "full"])
    p.add_argument("--inits", nargs="+", default=["pretrained", "scratch"], choices=["pretrained", "scratch"],
                   help="which side to fine-tune (two calls can share the work; a call with both prints the gains)")
    p.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-3])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--epochs-low", type=float, default=10)
    p.add_argument("--epochs-full", type=float, default=2)
    p.add_argument("--full-grid-all-seeds", dest="select_on_first_seed", action="store_false",
                   help="run every seed at every lr on the full training set too (by default the lr for the "
                        "full set is picked on the first seed, then the other seeds run at that lr only)")
    args = p.parse_args()
    if args.steps is None:
        # The schedule is written once, in the phase-1 recipe; phase 2 is its share of the whole (the
        # phase-2 recipe's own max_steps is for running it by hand and is overridden here).
        from bertcli.config import PretrainConfig, load_config

        phase1 = load_config(PretrainConfig, ROOT / args.pretrain_recipe).train.max_steps
        args.steps = round(phase1 / (1 - args.phase2_fraction)) if args.phase2_seq_len else phase1
    return args


if __name__ == "__main__":
    main()
