"""`bertcli predict CKPT [FILE|-]`: a fine-tuned model's predictions as JSON lines on stdout.

Output line i answers input line i, so predict works mid-pipeline. Input lines, by task:
  cls, regression   text, or 'first<TAB>second' for a pair model, or {"text": ..., "text_pair": ...}
  ner               text (split into words and punctuation), or {"text": ...} or {"tokens": [...]}
  qa                {"question": ..., "context": ..., "id": ...} or 'question<TAB>context'
Outputs: {"label", "probabilities"}; {"score"}; {"entities": [{"type", "text", "start", "end",
"score"}], "words", "tags"}; {"answer", "start", "end", "score", "id"}. Character offsets index the
input text (the context for qa). Input is read in blocks; each block is batched by length, so
short lines do not pay for long ones, and its results are written (in input order) before the
next block is read.
"""

from __future__ import annotations

import itertools
import json
import sys

from bertcli.checkpoint import load_checkpoint
from bertcli.config import PredictConfig
from bertcli.data.decoding import iter_text_lines
from bertcli.hf.onnx import RUNTIME_NOTES, runtime_model
from bertcli.runtime import console, pick_device, quantize_linear
from bertcli.tasks.loading import load_task_model
from bertcli.train.evaluation import forward_all

BLOCK_LINES = 4096  # lines read, predicted and written at a time


def run(cfg: PredictConfig) -> int:
    ckpt = load_checkpoint(cfg.checkpoint)
    loaded = load_task_model(ckpt, cfg.task, "predict")
    tokenizer = ckpt.tokenizer()
    model = loaded.model.to(pick_device(cfg.device))
    if cfg.fast:
        model = quantize_linear(model)
    with runtime_model(model, False, ckpt.config, cfg.runtime) as engine:
        count = predict_lines(cfg, loaded, tokenizer, engine)
    console.print(f"predicted {count:,} lines with {ckpt.folder} ({ckpt.task}"
                  f"{', int8 linear layers' if cfg.fast else ''}{RUNTIME_NOTES[cfg.runtime]})")
    return count


def predict_lines(cfg: PredictConfig, loaded, tokenizer, model) -> int:
    """Read, predict and write block by block; the number of lines."""
    batch_size = cfg.batch_size
    source = "<stdin>" if cfg.file == "-" else str(cfg.file)
    lines = enumerate(iter_text_lines(cfg.file), start=1)
    count = 0
    while True:
        block = list(itertools.islice(lines, BLOCK_LINES))
        if not block:
            break
        data = loaded.task.read_lines(block, source, loaded.settings)
        encoded = loaded.task.encode(data, tokenizer, loaded.settings, loaded.labels)
        outputs = forward_all(model, encoded.encoded, tokenizer.pad_id, batch_size) if len(encoded.encoded) else []
        records = loaded.task.predictions(encoded, outputs, loaded.labels, loaded.settings)
        sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        sys.stdout.flush()
        count += len(block)
    return count

