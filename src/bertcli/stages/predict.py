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

import numpy as np

from bertcli.checkpoint import load_checkpoint
from bertcli.config import PredictConfig
from bertcli.data.decoding import iter_text_lines
from bertcli.errors import UserError
from bertcli.hf.onnx import RUNTIME_NOTES, graph_key, runtime_model
from bertcli.long_inputs import windowed_outputs, windowed_word_outputs
from bertcli.tasks.base import Batchable
from bertcli.tasks.labelled import EncodedExamples
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
    with runtime_model(model, False, ckpt.config, cfg.runtime, graph_key(ckpt, False)) as engine:
        count = predict_lines(cfg, loaded, tokenizer, engine)
    console.print(f"predicted {count:,} lines with {ckpt.folder} ({ckpt.task}"
                  f"{', int8 linear layers' if cfg.fast else ''}{RUNTIME_NOTES[cfg.runtime]})")
    return count


# Tasks whose long inputs can be read as windows: whole texts with one output (averaged over the
# windows), and ner (each word tagged from the window where it has most context). qa windows its
# contexts already, with qa.doc_stride.
WINDOWED_TASKS = ("cls", "regression")


def predict_lines(cfg: PredictConfig, loaded, tokenizer, model) -> int:
    """Read, predict and write block by block; the number of lines."""
    task, settings = loaded.task, loaded.settings
    window = cfg.long_inputs == "window"
    if window and task.name not in (*WINDOWED_TASKS, "ner"):
        raise UserError(f"--long-inputs window: built for cls, regression and ner models; a {task.name} "
                        f"model reads at most {settings.max_seq_len} tokens per line (qa windows long contexts "
                        f"itself); use --long-inputs truncate")
    batch_size = cfg.batch_size
    source = "<stdin>" if cfg.file == "-" else str(cfg.file)
    lines = enumerate(iter_text_lines(cfg.file), start=1)
    count = truncated = 0
    while True:
        block = list(itertools.islice(lines, BLOCK_LINES))
        if not block:
            break
        data = task.read_lines(block, source, settings)
        if window and task.name == "ner":
            outputs = windowed_word_outputs(model, data, tokenizer, settings.max_seq_len, cfg.stride, batch_size)
            # every word has its own row of logits now: word w's first piece is row w
            encoded = Batchable(data, EncodedExamples([], [], None, meta=[np.arange(len(s)) for s in data.words]))
        elif window and data.pairs is None:
            outputs = windowed_outputs(model, data, tokenizer, settings.max_seq_len, cfg.stride, batch_size)
            encoded = Batchable(data, EncodedExamples([], [], None))  # cls/regression read outputs only
        else:
            encoded = task.encode(data, tokenizer, settings, loaded.labels)
            outputs = forward_all(model, encoded.encoded, tokenizer.pad_id, batch_size) if len(encoded.encoded) else []
            if task.name == "ner":  # a word past the window has no first piece (-1)
                truncated += sum(int((first < 0).any()) for first in encoded.encoded.meta)
            else:
                truncated += encoded.encoded.truncated
        records = task.predictions(encoded, outputs, loaded.labels, settings)
        sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        sys.stdout.flush()
        count += len(block)
    if truncated:
        how = "pairs are cut as BERT does" if window else "--long-inputs window reads single texts whole"
        console.print(f"note: {truncated:,} of {count:,} lines were longer than the model's {settings.max_seq_len} "
                      f"tokens and were truncated ({how})")
    return count

