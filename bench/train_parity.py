"""Does bertcli's pretraining learn exactly what Hugging Face's BertForPreTraining learns?

    .venv/bin/python bench/train_parity.py [--steps 300] [--dtypes fp64 fp32] [--work DIR]

Builds a Gutenberg corpus (three books from ../shared/data, an 8,000-piece SentencePiece model,
MLM + NSP pairs, 128 tokens), then trains two models from the same initial weights on the same
batches: bertcli's BertForPretraining through the engine's own train_step (the step `bertcli
pretrain` runs), and transformers' BertForPreTraining (weights exported with the same code as
`bertcli convert --to hf`) through a plain PyTorch loop. Both use torch AdamW with BERT's decay
rule, the same lr schedule (warmup then linear decay) and gradient clipping at 1.0. Dropout is 0 on
both sides: the two implementations draw their dropout masks in a different order, so with dropout
the runs would differ by design, not by error.

Prints the MLM loss of both at every step and the largest difference. In fp64 the differences are
rounding alone and must stay below 1e-6 (issue 9's check); in fp32 the run shows how far ordinary
float rounding carries two correct implementations apart over the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bertcli.config import ModelSpec, OptimConfig  # noqa: E402
from bertcli.data.shards import CorpusReader  # noqa: E402
from bertcli.model import BertForPretraining  # noqa: E402
from bertcli.model.heads import IGNORE_INDEX  # noqa: E402
from bertcli.hf.bert_weights import config_to_hf, state_to_hf  # noqa: E402
from bertcli.stages.pretrain import model_config, pretraining_losses  # noqa: E402
from bertcli.train.loop import train_step  # noqa: E402
from bertcli.train.optim import make_optimizer, param_groups  # noqa: E402
from bertcli.train.sampling import EpochBatches  # noqa: E402
from bertcli.train.schedule import lr_at, warmup_steps  # noqa: E402

BOOKS = 3  # the first three Gutenberg books of ../shared/data: more than 300 batches of 16


def bertcli_cmd(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "bertcli", "-q", *args], check=True, env=env, cwd=ROOT)


def build_corpus(work: Path, shared: Path) -> Path:
    corpus = work / "corpus"
    if (corpus / "manifest.json").is_file():
        return corpus
    books = [str(p) for p in sorted((shared / "corpus" / "gutenberg").glob("*.txt"))[:BOOKS]]
    bertcli_cmd("tokenize", "train", "--input", *books, "--out", str(work / "tok"), "--vocab-size", "8000")
    bertcli_cmd("build-corpus", "--input", *books, "--tokenizer", str(work / "tok"), "--out", str(corpus),
                "--max-seq-len", "128", "--seed", "0")
    return corpus


def batch_tensors(reader: CorpusReader, sampler: EpochBatches, step: int) -> dict:
    indices = sampler.indices(step)
    return {k: torch.from_numpy(v) for k, v in reader.batch(indices, sampler.epochs(step)).items()}


def hf_labels(batch: dict) -> torch.Tensor:
    """(B, T) labels, IGNORE_INDEX except at the masked positions: transformers' form."""
    labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
    real = batch["mlm_labels"] != IGNORE_INDEX
    rows = torch.arange(labels.shape[0])[:, None].expand_as(real)
    labels[rows[real], batch["mlm_positions"][real]] = batch["mlm_labels"][real]
    return labels


def run(reader: CorpusReader, steps: int, batch_size: int, dtype: torch.dtype, preset: str) -> list[tuple]:
    import transformers

    config = model_config(ModelSpec(preset=preset, dropout=0.0, attention_dropout=0.0), reader.vocab_size,
                          reader.pad_id)
    torch.manual_seed(0)
    ours = BertForPretraining(config).to(dtype)
    hf_config = transformers.BertConfig(**{k: v for k, v in config_to_hf(config, "pretraining", []).items()
                                           if k not in ("architectures", "model_type")})
    theirs = transformers.BertForPreTraining(hf_config).to(dtype)
    missing, unexpected = theirs.load_state_dict(state_to_hf(ours.state_dict(), config, "pretraining"), strict=False)
    # transformers ties the decoder to the word embeddings (and its bias to cls.predictions.bias)
    # itself; only those tied copies may be reported missing
    assert not unexpected and all(".decoder." in k for k in missing), (missing, unexpected)
    theirs.tie_weights()
    predictions = theirs.cls.predictions
    assert predictions.decoder.weight is theirs.bert.embeddings.word_embeddings.weight
    assert torch.equal(predictions.decoder.bias, ours.mlm.bias)

    optim = OptimConfig(lr=5e-4, weight_decay=0.01)
    our_opt = make_optimizer(ours, optim)
    their_opt = torch.optim.AdamW(param_groups(theirs, optim.weight_decay), lr=optim.lr,
                                  betas=(optim.beta1, optim.beta2), eps=optim.eps, foreach=True)
    warm = warmup_steps(steps, -1, 0.1)
    sampler = EpochBatches(len(reader), batch_size, seed=0)
    rows = []
    ours.train()
    theirs.train()
    for step in range(steps):
        lr = lr_at(step, optim.lr, warm, steps)
        for opt in (our_opt, their_opt):
            for group in opt.param_groups:
                group["lr"] = lr
        batch = batch_tensors(reader, sampler, step)
        n_masked = int((batch["mlm_labels"] != IGNORE_INDEX).sum())
        ours_in = {**batch, "mlm_share": 1.0, "nsp_share": 1.0}
        if not reader.has_nsp:
            ours_in.pop("next_sentence_label", None)
        out, our_norm, _ = train_step(ours, our_opt, [ours_in], pretraining_losses, "fp32", 1.0)

        ref = theirs(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                     attention_mask=batch["attention_mask"])
        labels = hf_labels(batch)
        mlm = F.cross_entropy(ref.prediction_logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        loss = mlm
        if reader.has_nsp:
            loss = mlm + F.cross_entropy(ref.seq_relationship_logits, batch["next_sentence_label"])
        loss.backward()
        their_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        their_opt.step()
        their_opt.zero_grad(set_to_none=True)
        rows.append((step + 1, float(out["mlm_loss"]), float(mlm.detach()), float(our_norm), float(their_norm), n_masked))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--preset", default="mini", help="mini = L4-H256 (issue 9's shape)")
    parser.add_argument("--dtypes", nargs="+", default=["fp64", "fp32"], choices=["fp64", "fp32"])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=None, help="where the corpus is built (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write every step's numbers here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="train-parity-"))
    reader = CorpusReader(build_corpus(work, args.shared), "train")
    print(f"corpus: {reader.folder}, {len(reader)} examples, NSP {'yes' if reader.has_nsp else 'no'}; "
          f"{args.preset}, batch {args.batch_size} x 128, {args.steps} steps")
    record = {}
    for name in args.dtypes:
        start = time.perf_counter()
        rows = run(reader, args.steps, args.batch_size, {"fp64": torch.float64, "fp32": torch.float32}[name],
                   args.preset)
        diffs = np.array([abs(a - b) for _, a, b, *_ in rows])
        norm_diffs = np.array([abs(a - b) / b for *_, a, b, _ in rows])
        worst = int(diffs.argmax())
        print(f"{name}: max |MLM loss difference| over {len(rows)} steps {diffs.max():.2e} (step {rows[worst][0]}); "
              f"at steps 1/100/200/300: " + " ".join(f"{diffs[i]:.1e}" for i in (0, 99, 199, 299) if i < len(rows))
              + f"; max relative grad-norm difference {norm_diffs.max():.1e}; "
              f"loss {rows[0][1]:.4f} -> {rows[-1][1]:.4f}; {time.perf_counter() - start:.0f} s")
        record[name] = rows
    if args.json:
        args.json.write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
