"""`qa`: extractive question answering on SQuAD v1.1. The model scores each token as the answer's
start and end (section 4.2); the best span over all windows of a context, at most max_answer_len
tokens, becomes a character span of the original context. Metric: SQuAD exact match and F1."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from bertcli.tasks.squad import Question, Questions, make_windows, read_squad
from bertcli.tasks.labelled import EncodedExamples
from bertcli.errors import UserError
from bertcli.model import BertForQuestionAnswering
from bertcli.tasks.base import Batchable, Task, parse_json_line, softmax
from bertcli.train.metrics import squad_metrics


class QATask(Task):
    name = "qa"
    selection_metric = "f1"  # SQuAD F1
    shown_metrics = ("exact_match", "f1")
    has_labels = False

    def read(self, path, settings, need_labels=True):
        return read_squad(path, need_labels)

    def read_lines(self, lines, source, settings):
        """{"question": ..., "context": ...} (optionally "id"), or 'question<TAB>context'."""
        items = []
        for number, line in lines:
            row = parse_json_line(line, number, source)
            if row is None:
                if "\t" not in line:
                    raise UserError(f"{source}:{number}: a QA line is {{\"question\": ..., \"context\": ...}} or "
                                    f"'question<TAB>context'")
                row = dict(zip(("question", "context"), line.split("\t", 1)))
            if not isinstance(row.get("question"), str) or not isinstance(row.get("context"), str):
                raise UserError(f"{source}:{number}: the JSON object needs \"question\" and \"context\" strings")
            items.append(Question(str(row.get("id", number)), row["question"], row["context"]))
        return Questions(source, items)

    def encode(self, data: Questions, tokenizer, settings, labels):
        windows = make_windows(data.items, tokenizer, settings.max_seq_len, settings.doc_stride,
                               settings.max_query_len)
        spans = np.asarray([w.span for w in windows], dtype=np.int64).reshape(-1, 2)
        encoded = EncodedExamples([w.input_ids for w in windows], [w.token_type_ids for w in windows], None,
                                  spans=spans, meta=windows)
        return Batchable(data, encoded)

    def build_model(self, arch, labels, settings, classifier_dropout):
        return BertForQuestionAnswering(arch)

    def loss(self, outputs, batch):
        logits = outputs.float()
        return (F.cross_entropy(logits[..., 0], batch["spans"][:, 0])
                + F.cross_entropy(logits[..., 1], batch["spans"][:, 1])) / 2

    def best_answers(self, data: Batchable, outputs, settings) -> list[dict]:
        """Per question, the highest start+end logit span over its windows (run_squad.py's rules: both
        ends inside the context, start in its best window, end >= start, at most max_answer_len
        tokens), with its probability among the n-best candidates."""
        candidates: list[list[tuple[float, int, int]]] = [[] for _ in data.source.items]
        for window, logits in zip(data.encoded.meta, outputs):
            start_logits, end_logits = logits[:, 0], logits[:, 1]
            in_context = window.offsets[:, 0] >= 0
            starts = [i for i in np.argsort(-start_logits)[:settings.n_best] if in_context[i] and window.max_context[i]]
            ends = [i for i in np.argsort(-end_logits)[:settings.n_best] if in_context[i]]
            for s in starts:
                for e in ends:
                    if s <= e < s + settings.max_answer_len:
                        candidates[window.question].append(
                            (float(start_logits[s] + end_logits[e]), int(window.offsets[s, 0]), int(window.offsets[e, 1])))
        answers = []
        for question, found in zip(data.source.items, candidates):
            if not found:
                answers.append({"answer": "", "start": None, "end": None, "score": 0.0, "id": question.id})
                continue
            found.sort(key=lambda c: -c[0])
            unique = list({(a, b): score for score, a, b in reversed(found[:settings.n_best])}.items())
            probs = softmax(np.asarray([score for _, score in unique]))
            best = int(probs.argmax())
            (a, b), _ = unique[best]
            answers.append({"answer": question.context[a:b], "start": a, "end": b,
                            "score": round(float(probs[best]), 6), "id": question.id})
        return answers

    def metrics(self, data, outputs, labels, settings):
        answers = self.best_answers(data, outputs, settings)
        golds = [[text for text, _ in q.answers] for q in data.source.items]
        return squad_metrics([a["answer"] for a in answers], golds)

    def predictions(self, data, outputs, labels, settings):
        return self.best_answers(data, outputs, settings)
