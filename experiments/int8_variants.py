"""How far dynamic int8 moves sentence vectors, by quantisation variant (issue 8's fast path).

    PYTHONPATH=src .venv/bin/python experiments/int8_variants.py CHECKPOINT [--sentences 600]

CHECKPOINT: an imported encoder (e.g. bench/out/tasks-full/minilm from bench/tasks.py). Embeds the
first --sentences SST-2 test sentences (mean pooling, normalised, batch 32) in fp32 and with each
variant of torch's dynamic int8 quantisation of the linear layers, and prints the cosine of each
sentence's int8 vector with its fp32 vector (min and mean) and the time against fp32.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

from bertcli.checkpoint import load_checkpoint
from bertcli.stages.embed import embed_texts, load_encoder

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--sentences", type=int, default=600)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # torch marks the dynamic-quantisation API deprecated
    lines = (DATA / "glue/sst2/test.tsv").read_text(encoding="utf-8").splitlines()
    column = lines[0].split("\t").index("sentence")
    texts = [line.split("\t")[column] for line in lines[1:args.sentences + 1]]
    loaded = load_checkpoint(args.checkpoint)
    tokenizer = loaded.tokenizer()

    def embed(model) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        vectors = np.stack(embed_texts(model, tokenizer, texts, "mean", True, 32, 128)[0])
        return vectors, time.perf_counter() - start

    exact, exact_seconds = embed(load_encoder(loaded))
    linear_names = [n for n, m in load_encoder(loaded).named_modules() if isinstance(m, torch.nn.Linear)]
    variants = {
        "every linear layer, one scale per matrix": {n: default_dynamic_qconfig for n in linear_names},
        "every linear layer, a scale per output channel": {n: per_channel_dynamic_qconfig for n in linear_names},
        "FFN layers only, per channel": {n: per_channel_dynamic_qconfig for n in linear_names if ".ffn_" in n},
        "first FFN matrix only, per channel": {n: per_channel_dynamic_qconfig for n in linear_names
                                               if n.endswith(".ffn_in")},
    }
    print(f"{len(texts)} sentences; fp32 {exact_seconds:.2f} s")
    for label, spec in variants.items():
        model = quantize_dynamic(load_encoder(loaded).cpu(), spec, dtype=torch.qint8)
        vectors, seconds = embed(model)
        cosine = (vectors * exact).sum(1)
        print(f"{label}: cosine with fp32 min {cosine.min():.4f}, mean {cosine.mean():.4f}; "
              f"{seconds:.2f} s ({exact_seconds / seconds:.2f}x fp32)")


if __name__ == "__main__":
    main()
