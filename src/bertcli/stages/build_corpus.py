"""`bertcli build-corpus`: text files -> documents -> NSP pairs -> masked examples -> shards.

The recipe is Google's create_pretraining_data.py (see data.pairs and data.masking for where we
differ and why). The output depends on cfg.seed and never on cfg.workers: text is tokenised in
pieces cut at fixed sizes, every document draws its pairs and masks from its own generator seeded
by (seed, split, copy, document), and results are gathered in input order before the seeded
shuffle. Everything is written into a staging folder that replaces cfg.out only when complete.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bertcli import artifacts, config
from bertcli.config import BuildCorpusConfig
from bertcli.console import console
from bertcli.data.documents import Documents, block_documents, blocks, detect_format, group_blocks
from bertcli.data.examples import Examples, make_examples
from bertcli.data.masking import REPLACEMENT_NAMES, Masker, MaskingRule
from bertcli.data.packing import make_packed_examples
from bertcli.data.shards import token_dtype, write_shard
from bertcli.data.text import read_input_text
from bertcli.errors import UserError
from bertcli.tokenizer import load_tokenizer


PIECE_CHARS = 1 << 20  # characters of text per tokenisation task
TASK_TOKENS = 1 << 18  # document tokens per example-making task
SPLIT_CODES = {"train": 0, "eval": 1}
# the random streams drawn from cfg.seed, one per decision, so that changing one leaves the others
_HOLDOUT, _PAIRS, _SHUFFLE, _PACK = 0, 1, 2, 3

# Per-process state of the worker functions (set by their initialisers; fork shares it for free).
_state: dict = {}


def run(cfg: BuildCorpusConfig) -> Path:
    out = _check(cfg)
    tokenizer = load_tokenizer(cfg.tokenizer)
    started = time.perf_counter()
    dtype = token_dtype(tokenizer.vocab_size)
    corpus, input_files = _read(cfg, dtype)
    console.print(f"read {len(input_files)} file(s): {corpus.num_documents:,} documents, "
                  f"{corpus.num_sentences:,} sentences, {corpus.num_tokens:,} tokens "
                  f"({time.perf_counter() - started:.1f}s)")
    splits = _hold_out(corpus, cfg)
    rule = masking_rule(cfg)
    # dynamic masking leaves the examples unmasked: pretraining draws their masks as it reads them
    masker = make_masker(tokenizer, rule) if cfg.masking == "static" else None
    with artifacts.staged_folder(out) as folder:
        entries = {}
        for name, docs in splits.items():
            examples = _examples(docs, name, cfg, masker, tokenizer.cls_id, tokenizer.sep_id)
            entries[name] = _write_split(folder, name, examples, docs, cfg, tokenizer)
            console.print(f"{name}: {len(examples):,} examples from {docs.num_documents:,} documents "
                          f"({time.perf_counter() - started:.1f}s)")
        tokenizer.copy_to(folder / "tokenizer")
        artifacts.write_manifest(
            folder, "corpus", config.to_dict(cfg), inputs=[Path(p) for p in cfg.input],
            tokenizer_fingerprint=tokenizer.fingerprint(), vocab_size=tokenizer.vocab_size,
            special_ids=tokenizer.settings["special_ids"], max_seq_len=cfg.max_seq_len,
            max_predictions_per_seq=cfg.predictions_per_seq(), objective=cfg.objective, masking=cfg.masking,
            masking_rule=rule.to_dict(), masking_seed=cfg.seed,
            token_dtype=str(dtype), input_files=input_files, splits=entries,
            statistics=_totals(entries))
    console.print(f"wrote {out} in {time.perf_counter() - started:.1f}s")
    return out


def masking_rule(cfg: BuildCorpusConfig) -> MaskingRule:
    return MaskingRule(masked_lm_prob=cfg.masked_lm_prob, max_predictions=cfg.predictions_per_seq(),
                       mask_token_prob=cfg.mask_token_prob, random_token_prob=cfg.random_token_prob,
                       whole_word_mask=cfg.whole_word_mask)


def make_masker(tokenizer, rule: MaskingRule) -> Masker:
    word_starts = tokenizer.word_start_table() if rule.whole_word_mask else None
    return Masker(tokenizer.vocab_size, tokenizer.special_ids, tokenizer.mask_id, rule=rule,
                  word_starts=word_starts, unk_id=tokenizer.unk_id)


def _check(cfg: BuildCorpusConfig) -> Path:
    if not cfg.input:
        raise UserError("no input given; pass --input FILE (repeatable) or set `input:` in the config")
    if not cfg.tokenizer:
        raise UserError("no tokenizer given; pass --tokenizer TOK_DIR (made by `bertcli tokenize train`)")
    artifacts.require(cfg.tokenizer, "tokenizer")
    return artifacts.check_output_target(cfg.out, "corpus", inputs=[*cfg.input, cfg.tokenizer])


# ----------------------------------------------------------------------------- text -> documents


def _read(cfg: BuildCorpusConfig, dtype: np.dtype) -> tuple[Documents, list[dict]]:
    """All inputs as one Documents, and what each file gave (its format, documents, tokens)."""
    tasks, formats, pieces = [], [], []
    for path in cfg.input:
        text = read_input_text(path)
        fmt = detect_format(text) if cfg.input_format == "auto" else cfg.input_format
        groups = group_blocks(blocks(text), PIECE_CHARS)
        tasks.extend((group, fmt) for group in groups)
        formats.append(fmt)
        pieces.append(len(groups))
    parts = _parallel(_tokenize_piece, tasks, cfg.workers, _init_tokenize, (cfg.tokenizer, dtype))
    files, input_files, start = [], [], 0
    for path, fmt, count in zip(cfg.input, formats, pieces):
        # a raw file is one document even when its paragraphs were tokenised in several pieces
        docs = Documents.concat(parts[start:start + count], dtype, as_one_document=fmt == "raw")
        start += count
        files.append(docs)
        input_files.append({"path": str(path), "format": fmt, "documents": docs.num_documents,
                            "sentences": docs.num_sentences, "tokens": docs.num_tokens})
    return Documents.concat(files, dtype), input_files


def _init_tokenize(tokenizer_folder: str, dtype: np.dtype) -> None:
    _state["tokenizer"] = load_tokenizer(tokenizer_folder)
    _state["dtype"] = dtype


def _tokenize_piece(task: tuple[list[str], str]) -> Documents:
    group, fmt = task
    documents = block_documents(group, fmt)
    ids = iter(_state["tokenizer"].encode_batch([s for doc in documents for s in doc]))
    return Documents.from_ids([[next(ids) for _ in doc] for doc in documents], _state["dtype"])


def _hold_out(corpus: Documents, cfg: BuildCorpusConfig) -> dict[str, Documents]:
    """The train split, and the eval split of held-out documents when cfg.eval_fraction > 0.

    A random-next B comes from another document of the same split (so eval text never reaches
    training), hence every split needs two documents.
    """
    n = corpus.num_documents
    if cfg.objective == "mlm":  # packed sequences need no second document
        return _hold_out_packed(corpus, cfg)
    if n < 2:
        raise UserError(f"corpus too small: the input makes {n} document(s), and next sentence prediction "
                        f"needs at least 2 (B of a random pair comes from another document); give more files, "
                        f"or separate documents by blank lines in a sentence-per-line file")
    if cfg.eval_fraction == 0:
        return {"train": corpus}
    n_eval = max(2, round(cfg.eval_fraction * n))
    if n - n_eval < 2:
        raise UserError(f"eval_fraction={cfg.eval_fraction}: the input makes {n} documents, too few to hold "
                        f"out {n_eval} and keep 2 for training (each split needs 2 for next sentence "
                        f"prediction); give more documents or set eval_fraction to 0")
    order = np.random.default_rng([cfg.seed, _HOLDOUT]).permutation(n)
    return {"train": corpus.select(np.sort(order[n_eval:])), "eval": corpus.select(np.sort(order[:n_eval]))}


def _hold_out_packed(corpus: Documents, cfg: BuildCorpusConfig) -> dict[str, Documents]:
    n = corpus.num_documents
    if n < 1:
        raise UserError("corpus is empty: the input holds no text after reading; check the --input files")
    if cfg.eval_fraction == 0:
        return {"train": corpus}
    n_eval = max(1, round(cfg.eval_fraction * n))
    if n - n_eval < 1:
        raise UserError(f"eval_fraction={cfg.eval_fraction}: the input makes {n} document(s), too few to hold "
                        f"out {n_eval} and keep one for training; give more documents or set eval_fraction to 0")
    order = np.random.default_rng([cfg.seed, _HOLDOUT]).permutation(n)
    return {"train": corpus.select(np.sort(order[n_eval:])), "eval": corpus.select(np.sort(order[:n_eval]))}


# ----------------------------------------------------------------------------- documents -> examples


def _examples(docs: Documents, split: str, cfg: BuildCorpusConfig, masker: Masker, cls_id: int,
              sep_id: int) -> Examples:
    # dupe_factor copies of every document, each with fresh pairs and masks; copies outer and
    # documents inner, as create_training_instances loops
    tasks = [(copy, first, stop) for copy in range(cfg.dupe_factor) for first, stop in _document_ranges(docs)]
    parts = _parallel(_make_examples, tasks, cfg.workers, _init_examples,
                      (docs, cfg, SPLIT_CODES[split], masker, cls_id, sep_id))
    return Examples.concat(parts)


def _document_ranges(docs: Documents) -> list[tuple[int, int]]:
    """Consecutive documents in ranges of about TASK_TOKENS tokens: units of parallel work."""
    ranges, first, size = [], 0, 0
    for d, tokens in enumerate(docs.document_tokens().tolist()):
        size += tokens
        if size >= TASK_TOKENS or d == docs.num_documents - 1:
            ranges.append((first, d + 1))
            first, size = d + 1, 0
    return ranges


def _init_examples(docs: Documents, cfg: BuildCorpusConfig, split_code: int, masker: Masker, cls_id: int,
                   sep_id: int) -> None:
    _state.update(docs=docs, cfg=cfg, split_code=split_code, masker=masker, cls_id=cls_id, sep_id=sep_id)


def _make_examples(task: tuple[int, int, int]) -> Examples:
    copy, first, stop = task
    cfg = _state["cfg"]
    if cfg.objective == "mlm":
        rng = np.random.default_rng([cfg.seed, _PACK, _state["split_code"], copy, first])
        return make_packed_examples(_state["docs"], range(first, stop), rng, cfg.max_seq_len, _state["masker"],
                                    _state["cls_id"], _state["sep_id"])
    seed = (cfg.seed, _PAIRS, _state["split_code"], copy)
    return make_examples(_state["docs"], range(first, stop), lambda d: np.random.default_rng([*seed, d]),
                         cfg.max_seq_len, cfg.short_seq_prob, cfg.random_next_prob, _state["masker"],
                         _state["cls_id"], _state["sep_id"])


def _parallel(function: Callable, tasks: list, workers: int, initializer: Callable, initargs: tuple) -> list:
    """[function(task) for task in tasks], in order, in `workers` processes (or in this one)."""
    if workers == 1 or len(tasks) < 2:
        initializer(*initargs)
        try:
            return [function(task) for task in tasks]
        finally:
            _state.clear()
    with multiprocessing.get_context().Pool(min(workers, len(tasks)), initializer, initargs) as pool:
        return pool.map(function, tasks, chunksize=1)


# ----------------------------------------------------------------------------- examples -> shards


_COUNTS = ("documents", "sentences", "source_tokens", "examples", "tokens", "text_tokens", "masked",
           "random_next")


def _write_split(folder: Path, name: str, examples: Examples, docs: Documents, cfg: BuildCorpusConfig,
                 tokenizer) -> dict:
    # Google shuffles all instances before writing, so consecutive examples are unrelated
    order = np.random.default_rng([cfg.seed, _SHUFFLE, SPLIT_CODES[name]]).permutation(len(examples))
    shards = [write_shard(folder, f"{name}/shard-{k:05d}", examples.take(order[first:first + cfg.shard_size]),
                          cfg.max_seq_len)
              for k, first in enumerate(range(0, len(examples), cfg.shard_size))]
    tokens = int(examples.lengths.sum())
    # [CLS] and every [SEP] (one per pair half, or one per packed document end) are not text
    specials = int(np.isin(examples.input_ids, [tokenizer.cls_id, tokenizer.sep_id]).sum())
    counts = {
        "documents": docs.num_documents,
        "sentences": docs.num_sentences,
        "source_tokens": docs.num_tokens,  # before dupe_factor copies
        "examples": len(examples),
        "tokens": tokens,  # in examples, [CLS] and [SEP] included
        "text_tokens": tokens - specials,
        "masked": int(examples.mlm_counts.sum()),
        "random_next": int(examples.next_sentence_labels.sum()),  # 0 without NSP (objective mlm)
        "replacements": dict(zip(REPLACEMENT_NAMES, examples.replacements.tolist())),
    }
    return {"examples": len(examples), "shards": shards, "statistics": _with_shares(counts)}


def _totals(entries: dict[str, dict]) -> dict:
    """The statistics of all splits together."""
    stats = [entry["statistics"] for entry in entries.values()]
    totals = {key: sum(s[key] for s in stats) for key in _COUNTS}
    totals["replacements"] = {key: sum(s["replacements"][key] for s in stats) for key in REPLACEMENT_NAMES}
    return _with_shares(totals)


def _with_shares(counts: dict) -> dict:
    masked = max(counts["masked"], 1)
    return {
        **counts,
        "masked_share": counts["masked"] / max(counts["text_tokens"], 1),  # of the non-special tokens
        "replacement_shares": {key: value / masked for key, value in counts["replacements"].items()},
        "nsp_random_share": counts["random_next"] / max(counts["examples"], 1),
    }
