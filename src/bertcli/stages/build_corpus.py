"""`bertcli build-corpus`: text -> documents -> NSP pairs (or packed sequences) -> examples -> shards.

The recipe is Google's create_pretraining_data.py (see data.pairs and data.masking for where we
differ and why), run as a stream so that memory does not grow with the input:

  * the inputs are read as a stream (data.inputs) and cut into jobs of about PIECE_CHARS
    characters, which workers split into sentences and tokenise (data.reading);
  * consecutive jobs make a block of about block_mb MB of text; a block's documents are held out
    into train/eval, paired (B of a random-next pair comes from another document of the same
    block, where Google draws from the whole corpus) and masked, dupe_factor copies of each;
  * the block's examples are shuffled (where Google shuffles all examples of the corpus at once)
    and appended to the shards, which are written as they fill, while the workers make the next
    block's examples.
Pretraining draws a fresh permutation of all examples every epoch, so the block-level shuffle
does not change what a training batch holds. Every random decision is drawn from a generator
seeded by (seed, stream, split, block, copy, document), units of work are cut at fixed sizes and
results are gathered in order, so the output depends on cfg.seed and never on cfg.workers; and a
block's examples do not depend on which build (--shard-index of --num-shards) made it.
Everything is written into a staging folder that replaces cfg.out only when complete.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from bertcli import artifacts, config
from bertcli.config import BuildCorpusConfig
from bertcli.console import Throughput, console
from bertcli.data.batch_masking import can_batch
from bertcli.data.corpus_checks import corpus_warnings
from bertcli.data.corpus_stats import SplitStatistics, sum_statistics
from bertcli.data.documents import Documents
from bertcli.data.examples import Examples, make_examples, masked
from bertcli.data.inputs import InputReport
from bertcli.data.masking import Masker, MaskingRule
from bertcli.data.packing import make_packed_examples
from bertcli.data.reading import Tokenised, init_tokenize, text_jobs, tokenize_job
from bertcli.data.shards import ShardWriter, token_dtype
from bertcli.data.workers import Workers, state
from bertcli.errors import UserError
from bertcli.folder_lock import writes_output
from bertcli.tokenizer import load_tokenizer


PIECE_CHARS = 1 << 20  # characters of text per tokenisation job
JOB_TOKENS = 1 << 18  # document tokens per example-making job
SPLIT_CODES = {"train": 0, "eval": 1}
# the random streams drawn from cfg.seed, one per decision, so that changing one leaves the others
_HOLDOUT, _PAIRS, _SHUFFLE, _PACK = 0, 1, 2, 3


@writes_output
def run(cfg: BuildCorpusConfig) -> Path:
    out = _check(cfg)
    tokenizer = load_tokenizer(cfg.tokenizer)
    started = time.perf_counter()
    dtype = token_dtype(tokenizer.vocab_size)
    shard_index, num_shards = sharding(cfg)
    rule = masking_rule(cfg)
    # dynamic masking leaves the examples unmasked: pretraining draws their masks as it reads them
    masker = make_masker(tokenizer, rule) if cfg.masking == "static" else None
    split_names = ["train", "eval"] if cfg.eval_fraction > 0 else ["train"]
    reports: list[InputReport] = []
    inputs = _InputCounts()
    with artifacts.staged_folder(out) as folder, \
            Workers(cfg.workers or os.cpu_count() or 1, _init_worker, (cfg, dtype, masker, tokenizer.cls_id, tokenizer.sep_id),
                    spool=folder / ".spool") as workers, \
            Throughput(cfg.progress, "build-corpus") as progress:
        writers = {name: ShardWriter(folder, name, cfg.shard_size, cfg.max_seq_len) for name in split_names}
        stats = {name: SplitStatistics(cfg.max_seq_len, tokenizer) for name in split_names}
        work = folder / ".blocks"  # a block's documents, shared with the workers through the page cache
        work.mkdir()
        # A block's examples are written while the workers make the next block's: the main process's
        # shuffle and write would otherwise leave them idle.
        previous: list[_BlockSplit] = []
        for block, before, parts in _blocks(cfg, reports, workers, shard_index, num_shards,
                                    lambda part: progress.update(part.chars, writers["train"].examples)):
            inputs.add(parts)
            docs = Documents.concat([p.documents for p in parts], dtype, [p.continues for p in parts])
            current = [_BlockSplit(name, block, split_docs, _start_examples(workers, work, split_docs, name, block, cfg))
                       for name, split_docs in _hold_out(docs, cfg, block, before).items()]
            _write(previous, writers, stats, cfg)
            previous = current
            progress.update(0, sum(w.examples for w in writers.values()))
        _write(previous, writers, stats, cfg)
        shutil.rmtree(work)
        entries = {name: {**writers[name].close(), "statistics": stats[name].result()} for name in split_names}
        input_files = inputs.entries(reports, num_shards)
        _check_sizes(entries, cfg)
        totals = sum_statistics([s.result() for s in stats.values()], cfg.max_seq_len)
        warnings = corpus_warnings(totals, config.to_dict(cfg))
        tokenizer.copy_to(folder / "tokenizer")
        artifacts.write_manifest(
            folder, "corpus", config.to_dict(cfg), inputs=[Path(p) for p in cfg.input if p != "-"],
            tokenizer_fingerprint=tokenizer.fingerprint(), vocab_size=tokenizer.vocab_size,
            special_ids=tokenizer.settings["special_ids"], max_seq_len=cfg.max_seq_len,
            max_predictions_per_seq=cfg.predictions_per_seq(), objective=cfg.objective, masking=cfg.masking,
            masking_rule=rule.to_dict(), masking_seed=cfg.seed,
            token_dtype=str(dtype), input_files=input_files, splits=entries,
            shard_index=shard_index, num_shards=num_shards,
            statistics=totals, warnings=warnings)
    for entry in input_files:
        _report_input(entry)
    for name, entry in entries.items():
        console.print(f"{name}: {entry['examples']:,} examples in {len(entry['shards'])} shard(s) from "
                      f"{entry['statistics']['documents']:,} documents")
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"wrote {out} in {time.perf_counter() - started:.1f}s")
    return out


def sharding(cfg: BuildCorpusConfig) -> tuple[int, int]:
    """(shard_index, num_shards): the settings, else torchrun's RANK / WORLD_SIZE, else (0, 1)."""
    num = cfg.num_shards if cfg.num_shards is not None else int(os.environ.get("WORLD_SIZE", "1") or 1)
    index = cfg.shard_index if cfg.shard_index is not None else int(os.environ.get("RANK", "0") or 0)
    if not 0 <= index < num:
        raise UserError(f"shard_index {index} is outside [0, num_shards={num}); pass --shard-index I "
                        f"--num-shards N with 0 <= I < N")
    return index, num


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


# ----------------------------------------------------------------------------- text -> blocks of documents


def _blocks(cfg: BuildCorpusConfig, reports: list, workers: Workers, shard_index: int, num_shards: int,
            tokenised: Callable[[Tokenised], None]):
    """(block number, documents read before it, its tokenised parts) for the blocks this build
    makes, in order.

    Blocks are cut from the text jobs by size alone, so every build of a sharded set agrees on
    them; the other builds' jobs are read past without being tokenised.
    """
    block_chars = int(cfg.block_mb * 1e6)

    def numbered():
        block, size, documents = 0, 0, 0
        starts[0] = 0
        for job in text_jobs(cfg.input, cfg, PIECE_CHARS, reports):
            if size >= block_chars:
                block, size = block + 1, 0
                starts[block] = documents
            size += job[3]
            documents += sum(not piece.continues for piece in job[0])
            if block % num_shards == shard_index:
                yield block, job

    starts: dict[int, int] = {}  # block -> documents read before it (in every part of a sharded build)
    current, parts = None, []
    for block, part in workers.map(_tokenize, numbered()):
        if block != current and parts:
            yield current, starts[current], parts
            parts = []
        current = block
        parts.append(part)
        tokenised(part)
    if parts:
        yield current, starts[current], parts


def _tokenize(job: tuple) -> tuple[int, Tokenised]:
    block, text_job = job
    return block, tokenize_job(text_job)


def _report_input(entry: dict) -> None:
    """Tell on stderr what was read and what was cut or skipped, so nothing is dropped silently."""
    for cut in entry["gutenberg_cuts"]:
        console.print(f"{entry['path']}: cut Project Gutenberg {cut['part']} (lines {cut['lines']}, "
                      f"{cut['removed_chars']:,} characters)")
    if entry["skipped_invalid_utf8_lines"]:
        console.print(f"{entry['path']}: skipped {entry['skipped_invalid_utf8_lines']:,} lines of invalid UTF-8")
    if entry["empty_documents"]:
        console.print(f"{entry['path']}: skipped {entry['empty_documents']:,} empty documents")


def _hold_out(docs: Documents, cfg: BuildCorpusConfig, block: int, before: int) -> dict[str, Documents]:
    """The block's train documents, and its eval documents when cfg.eval_fraction > 0: a seeded
    choice of whole documents (eval text never reaches training; a random-next B comes from the
    same split). The count is the block's share of max(2, round(eval_fraction * documents)) over
    all documents read so far, `before` being those before the block, so small corpora hold out
    2 documents as before and large ones eval_fraction of them, block by block."""
    if cfg.eval_fraction == 0:
        return {"train": docs}
    n = docs.num_documents

    def owed(documents: int) -> int:
        return max(2, round(cfg.eval_fraction * documents)) if documents else 0

    n_eval = min(n, max(0, owed(before + n) - owed(before)))
    order = np.random.default_rng([cfg.seed, _HOLDOUT, block]).permutation(n)
    return {"train": docs.select(np.sort(order[n_eval:])), "eval": docs.select(np.sort(order[:n_eval]))}


def _check_sizes(entries: dict, cfg: BuildCorpusConfig) -> None:
    """Refuse a corpus whose splits are too small to mean anything (the staged folder is dropped)."""
    need = 1 if cfg.objective == "mlm" else 2  # NSP: B of a random pair comes from another document
    train = entries["train"]["statistics"]["documents"]
    if train < need:
        raise UserError(f"corpus too small: the input makes {train} training document(s), and "
                        + ("next sentence prediction needs at least 2 (B of a random pair comes from another "
                           "document); give more files, or separate documents by blank lines in a "
                           "sentence-per-line file" if need == 2 else "at least one is needed; give more text")
                        + (f" (eval_fraction={cfg.eval_fraction} held out the rest)" if cfg.eval_fraction else ""))
    if "eval" in entries and entries["eval"]["statistics"]["documents"] < need:
        raise UserError(f"eval_fraction={cfg.eval_fraction}: held out {entries['eval']['statistics']['documents']} "
                        f"document(s), too few for an eval split (it needs {need}); give more documents or set "
                        f"eval_fraction to 0")


# ----------------------------------------------------------------------------- documents -> examples


class _BlockSplit(NamedTuple):
    """One split of one block whose examples are being made."""

    name: str
    block: int
    docs: Documents
    examples: Callable[[], Examples]  # waits for them


def _start_examples(workers: Workers, work: Path, docs: Documents, split: str, block: int,
                    cfg: BuildCorpusConfig) -> Callable[[], Examples]:
    """Start making the examples of one block's documents of one split: dupe_factor copies of every
    document, each with fresh pairs and masks; copies outer and documents inner, as Google loops.
    Returns a function that waits for them, in order."""
    if docs.num_documents == 0:
        empty = make_examples(docs, range(0), None, cfg.max_seq_len, 0, 0, None, 0, 0)
        return lambda: empty
    key = str(work / f"{split}-{block:06d}")
    if workers.workers > 1:  # the workers map the arrays from disk; in-process they are used as they are
        os.mkdir(key)
        for name in ("tokens", "sentence_offsets", "document_offsets"):
            np.save(os.path.join(key, f"{name}.npy"), getattr(docs, name))
    else:
        state["blocks"][key] = docs
    jobs = [(key, SPLIT_CODES[split], block, copy, first, stop)
             for copy in range(cfg.dupe_factor) for first, stop in _document_ranges(docs)]
    results = workers.submit(_make_examples, jobs)

    def examples() -> Examples:
        made = Examples.concat(results())
        if workers.workers > 1:
            shutil.rmtree(key)
        else:
            del state["blocks"][key]
        return made

    return examples


def _write(splits: list[_BlockSplit], writers: dict, stats: dict, cfg: BuildCorpusConfig) -> None:
    """Shuffle each split's examples of a block and append them to its shards."""
    for split in splits:
        examples = split.examples()
        order = np.random.default_rng([cfg.seed, _SHUFFLE, SPLIT_CODES[split.name], split.block]).permutation(len(examples))
        writers[split.name].add(examples, order)
        stats[split.name].add(split.docs, examples)


def _document_ranges(docs: Documents) -> list[tuple[int, int]]:
    """Consecutive documents in ranges of about JOB_TOKENS tokens: units of parallel work."""
    ranges, first, size = [], 0, 0
    for d, tokens in enumerate(docs.document_tokens().tolist()):
        size += tokens
        if size >= JOB_TOKENS or d == docs.num_documents - 1:
            ranges.append((first, d + 1))
            first, size = d + 1, 0
    return ranges


def _init_worker(cfg: BuildCorpusConfig, dtype: np.dtype, masker: Masker | None, cls_id: int, sep_id: int) -> None:
    init_tokenize(cfg.tokenizer, dtype)
    state.update(cfg=cfg, masker=masker, cls_id=cls_id, sep_id=sep_id, blocks={})


def _block_documents(key: str) -> Documents:
    blocks = state["blocks"]
    if key not in blocks:  # a worker process: map the block's arrays (only the latest is kept)
        blocks.clear()
        blocks[key] = Documents(*(np.load(os.path.join(key, f"{name}.npy"), mmap_mode="r")
                                  for name in ("tokens", "sentence_offsets", "document_offsets")))
    return blocks[key]


def _make_examples(job: tuple) -> Examples:
    key, split_code, block, copy, first, stop = job
    cfg, docs, masker = state["cfg"], _block_documents(key), state["masker"]
    if cfg.objective == "mlm":
        rng = np.random.default_rng([cfg.seed, _PACK, split_code, block, copy, first])
        # static token-level masks are drawn for all rows at once (data.batch_masking)
        batch = can_batch(masker)
        examples = make_packed_examples(docs, range(first, stop), rng, cfg.max_seq_len, None if batch else masker,
                                        state["cls_id"], state["sep_id"])
        return masked(examples, masker, [(rng, len(examples))]) if batch else examples
    seed = (cfg.seed, _PAIRS, split_code, block, copy)
    return make_examples(docs, range(first, stop), lambda d: np.random.default_rng([*seed, d]),
                         cfg.max_seq_len, cfg.short_seq_prob, cfg.random_next_prob, masker,
                         state["cls_id"], state["sep_id"])


# ----------------------------------------------------------------------------- examples -> shards


class _InputCounts:
    """Documents, sentences and tokens per input file, from the tokenised parts."""

    def __init__(self):
        self.counts: dict[int, list[int]] = {}
        self.last_input = None

    def add(self, parts: list[Tokenised]) -> None:
        for i, part in enumerate(parts):
            c = self.counts.setdefault(part.input_index, [0, 0, 0])
            docs = part.documents
            merged = part.continues and i > 0 and docs.num_documents > 0
            c[0] += docs.num_documents - merged
            c[1] += docs.num_sentences
            c[2] += docs.num_tokens

    def entries(self, reports: list[InputReport], num_shards: int) -> list[dict]:
        entries = []
        for index, report in enumerate(reports):
            documents, sentences, tokens = self.counts.get(index, [0, 0, 0])
            if documents == 0 and num_shards == 1:
                raise UserError(f"{report.path}: is empty (no text after reading it as {report.format}); "
                                f"give a file with text in it")
            entries.append({**report.to_dict(), "documents": documents, "sentences": sentences, "tokens": tokens})
        return entries
