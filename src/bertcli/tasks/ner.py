"""`ner`: a tag per word (CoNLL-2003). Each word's first piece carries its label and its
prediction; later pieces are ignored in the loss (section 4.3). Metric: entity-level P/R/F1."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from bertcli.tasks.conll import TaggedSentences, read_conll, tag_scheme
from bertcli.labels import IGNORE_INDEX
from bertcli.tasks.labelled import EncodedExamples
from bertcli.tasks.words import flatten_pieces, split_words, word_pieces
from bertcli.errors import UserError
from bertcli.model import BertForTokenClassification
from bertcli.tasks.base import Batchable, Task, TaskSettings, parse_json_line, softmax
from bertcli.train.metrics import entity_metrics, entity_spans


class NerTask(Task):
    name = "ner"
    selection_metric = "f1"  # entity-level F1, as CoNLL-2003 is reported
    shown_metrics = ("f1", "precision", "recall", "accuracy")
    per_token = True

    def read(self, path, settings, need_labels=True):
        return read_conll(path, need_labels)

    def read_lines(self, lines, source, settings):
        """Plain text (split into words and punctuation), or {"text": ...} or {"tokens": [...]}."""
        words, spans, texts = [], [], []
        for number, line in lines:
            row = parse_json_line(line, number, source)
            if row is not None and isinstance(row.get("tokens"), list):
                tokens = [str(t) for t in row["tokens"]]
                text = " ".join(tokens)
                starts = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]]).tolist() if tokens else []
                found = [(t, s, s + len(t)) for t, s in zip(tokens, starts)]
            else:
                text = line if row is None else row.get("text")
                if not isinstance(text, str):
                    raise UserError(f"{source}:{number}: the JSON object needs a \"text\" string or a "
                                    f"\"tokens\" list")
                found = split_words(text)
            texts.append(text)
            words.append([w for w, _, _ in found])
            spans.append([(a, b) for _, a, b in found])
        sentences = TaggedSentences(source, words, None, [n for n, _ in lines])
        sentences.texts, sentences.spans = texts, spans
        return sentences

    def label_set(self, data: TaggedSentences) -> list[str]:
        seen = {tag for sentence in data.tags for tag in sentence}
        # Both B- and I- of every entity type, so that a type's tag missing from a small training
        # slice is not refused in dev data (IOB1 and IOB2 both use them).
        kinds = {tag[2:] for tag in seen if tag[:2] in ("B-", "I-")}
        labels = sorted(seen | {f"{p}-{k}" for k in kinds for p in "BI"})
        if labels == ["O"] or not labels:
            raise UserError(f"{data.path}: every tag is O; NER training data needs entity tags (B-PER, I-LOC, ...)")
        return labels

    def settings_from(self, data, settings):
        return TaskSettings(**{**settings.to_dict(), "scheme": tag_scheme(data.tags)})

    def encode(self, data: TaggedSentences, tokenizer, settings, labels):
        index = {name: i for i, name in enumerate(labels)}
        flat = [w for sentence in data.words for w in sentence]
        pieces_flat = word_pieces(tokenizer, flat)
        input_ids, types, token_labels, firsts = [], [], [], []
        position = 0
        for s, sentence in enumerate(data.words):
            pieces = pieces_flat[position:position + len(sentence)]
            position += len(sentence)
            ids, first, fitted = flatten_pieces(pieces, settings.max_seq_len - 2)
            input_ids.append(np.concatenate([[tokenizer.cls_id], ids, [tokenizer.sep_id]]).astype(np.int64))
            types.append(np.zeros(len(ids) + 2, dtype=np.int64))
            first = np.where(first >= 0, first + 1, -1)  # +1 for [CLS]
            firsts.append(first)
            if data.tags is not None:
                row = np.full(len(ids) + 2, IGNORE_INDEX, dtype=np.int64)
                for w in range(fitted):
                    tag = data.tags[s][w]
                    if tag not in index:
                        raise UserError(f"{data.path}:{data.lines[s] + w}: unknown tag {tag!r}; the model knows "
                                        f"{', '.join(labels)}. Fix the tag or train on data that has it")
                    row[first[w]] = index[tag]
                token_labels.append(row)
        encoded = EncodedExamples(input_ids, types, None, token_labels if data.tags is not None else None)
        encoded.meta = firsts
        return Batchable(data, encoded)

    def build_model(self, arch, labels, settings, classifier_dropout):
        return BertForTokenClassification(arch, len(labels), classifier_dropout)

    def loss(self, outputs, batch):
        return F.cross_entropy(outputs.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)

    def word_tags(self, data: Batchable, outputs, labels) -> tuple[list[list[str]], list[list[float]]]:
        """The predicted tag of every word (O for words cut off by max_seq_len), and its probability."""
        tags, confidences = [], []
        for first, logits in zip(data.encoded.meta, outputs):
            probs = softmax(logits.astype(np.float64))
            best = probs.argmax(-1)
            tags.append([labels[best[f]] if f >= 0 else "O" for f in first])
            confidences.append([float(probs[f, best[f]]) if f >= 0 else 0.0 for f in first])
        return tags, confidences

    def metrics(self, data, outputs, labels, settings):
        predicted, _ = self.word_tags(data, outputs, labels)
        cut = sum(int((first < 0).sum()) for first in data.encoded.meta)
        return {**entity_metrics(data.source.tags, predicted), "words_truncated": cut}

    def predictions(self, data, outputs, labels, settings):
        predicted, confidences = self.word_tags(data, outputs, labels)
        source = data.source
        records = []
        for s, (tags, conf) in enumerate(zip(predicted, confidences)):
            spans, text = source.spans[s], source.texts[s]
            entities = []
            for kind, first, last in entity_spans(tags):
                start, end = spans[first][0], spans[last][1]
                entities.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                                 "score": round(float(np.mean(conf[first:last + 1])), 6)})
            records.append({"entities": entities, "words": source.words[s], "tags": tags})
        return records
