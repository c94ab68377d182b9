"""The corpus shard format: writing shards and reading batches back through memory maps.

A corpus folder holds one sub-folder per split (`train/`, optionally `eval/`), each holding shards
`shard-NNNNN/` of up to `shard_size` examples. A shard is a set of .npy files, ragged fields as a
flat array plus (N + 1,) int64 offsets:

  input_ids.npy             flat token ids after masking; uint16 when the vocabulary fits, else int32
  offsets.npy               example r is input_ids[offsets[r]:offsets[r + 1]]: [CLS] A [SEP] B [SEP]
  a_lens.npy                (N,) tokens of A; token_type_ids are 0 on the first a_len + 2 positions
  mlm_positions.npy         flat predicted positions, sorted within an example (uint16 or int32)
  mlm_labels.npy            flat original ids at those positions (token dtype)
  mlm_offsets.npy           example r predicts mlm_positions[mlm_offsets[r]:mlm_offsets[r + 1]]
  next_sentence_labels.npy  (N,) uint8, 0 = B follows A, 1 = B is random
  document_ids.npy          (N, 2) int32 documents of A and B within the split (checks only)

The manifest lists every shard with its example count and the sha256 of each file.
"""

from __future__ import annotations

import mmap
import shutil
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from bertcli import artifacts
from bertcli.data.arrays import offsets_from_lengths
from bertcli.data.dynamic_masking import mask_batch
from bertcli.data.examples import Examples
from bertcli.data.masking import Masker, MaskingRule
from bertcli.errors import UserError
from bertcli.labels import IGNORE_INDEX

SHARD_FILES = ("input_ids", "offsets", "a_lens", "mlm_positions", "mlm_labels", "mlm_offsets",
               "next_sentence_labels", "document_ids")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 65535 else np.int32)


def position_dtype(max_seq_len: int) -> np.dtype:
    return np.dtype(np.uint16 if max_seq_len <= 65535 else np.int32)


class ShardFiles:
    """One shard, written as its examples arrive: each file's rows are appended to a headerless
    file, which close() turns into the .npy (what np.save of all the rows writes). A build never
    holds a shard's examples in memory, only the few thousand it appends at a time."""

    def __init__(self, root: Path, name: str, max_seq_len: int):
        self.name, self.folder = name, root / name
        self.folder.mkdir(parents=True)
        self.positions = position_dtype(max_seq_len)
        self.files = {key: open(self.folder / f"{key}.rows", "wb") for key in SHARD_FILES}
        self.layout: dict[str, tuple] = {}  # key -> (dtype, shape of a row)
        self.rows = dict.fromkeys(SHARD_FILES, 0)
        self.examples = self.tokens = self.predictions = 0
        for key in ("offsets", "mlm_offsets"):
            self._append(key, np.zeros(1, np.int64))

    def append(self, examples: Examples) -> None:
        self._append("input_ids", examples.input_ids)
        self._append("offsets", self.tokens + np.cumsum(examples.lengths, dtype=np.int64))
        self._append("a_lens", examples.a_lens.astype(self.positions))
        self._append("mlm_positions", examples.mlm_positions.astype(self.positions))
        self._append("mlm_labels", examples.mlm_labels)
        self._append("mlm_offsets", self.predictions + np.cumsum(examples.mlm_counts, dtype=np.int64))
        self._append("next_sentence_labels", examples.next_sentence_labels)
        self._append("document_ids", examples.document_ids)
        self.examples += len(examples)
        self.tokens += int(examples.lengths.sum())
        self.predictions += int(examples.mlm_counts.sum())

    def close(self) -> dict:
        """Write the .npy files and return the shard's manifest entry."""
        checksums = {}
        for key in SHARD_FILES:
            self.files[key].close()
            rows = self.folder / f"{key}.rows"
            path = self.folder / f"{key}.npy"
            dtype, row_shape = self.layout[key]
            with open(path, "wb") as file, open(rows, "rb") as body:
                npy_format.write_array_header_1_0(file, {"descr": npy_format.dtype_to_descr(dtype),
                                                         "fortran_order": False, "shape": (self.rows[key], *row_shape)})
                shutil.copyfileobj(body, file, 1 << 22)
            rows.unlink()
            checksums[path.name] = artifacts.sha256_file(path)
        return {"path": self.name, "examples": self.examples, "tokens": self.tokens, "sha256": checksums}

    def _append(self, key: str, array: np.ndarray) -> None:
        self.layout.setdefault(key, (array.dtype, array.shape[1:]))
        self.rows[key] += len(array)
        np.ascontiguousarray(array).tofile(self.files[key])


def corpus_splits(folder: str | Path) -> list[str]:
    """The splits of a corpus folder, e.g. ["train", "eval"]."""
    return list(artifacts.require(folder, "corpus").get("splits", {}))


class CorpusReader:
    """Random access to one split of a corpus; shards are memory-mapped on first use (per process,
    so a reader can be handed to DataLoader workers)."""

    def __init__(self, folder: str | Path, split: str = "train"):
        self.folder = Path(folder)
        self.manifest = artifacts.require(self.folder, "corpus")
        splits = self.manifest.get("splits", {})
        if split not in splits:
            raise UserError(f"{self.folder}: no {split!r} split; this corpus has: {', '.join(splits) or 'none'}")
        self.split = split
        self.tokenizer_fingerprint: str = self.manifest["tokenizer_fingerprint"]
        self.vocab_size: int = self.manifest["vocab_size"]
        self.max_seq_len: int = self.manifest["max_seq_len"]
        self.max_predictions: int = self.manifest["max_predictions_per_seq"]
        self.special_ids: dict[str, int] = self.manifest["special_ids"]
        self.pad_id: int = self.special_ids["[PAD]"]
        # Corpora from before these settings existed are MLM + NSP with static masks.
        self.objective: str = self.manifest.get("objective", "mlm_nsp")
        self.masking: str = self.manifest.get("masking", "static")
        self.has_nsp = self.objective == "mlm_nsp"
        self._masker = None  # made on first use, for dynamic masking
        self._entries = splits[split]["shards"]
        counts = np.array([entry["examples"] for entry in self._entries], dtype=np.int64)
        self._starts = offsets_from_lengths(counts)
        for entry in self._entries:
            for key in SHARD_FILES:
                if not (self.folder / entry["path"] / f"{key}.npy").is_file():
                    raise UserError(f"{self.folder / entry['path'] / key}.npy: missing; the corpus is "
                                    f"incomplete, rebuild it with `bertcli build-corpus`")
        self._shards: list[dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_shards": None}  # memory maps are reopened, not pickled

    def batch(self, indices, epochs=None) -> dict[str, np.ndarray]:
        """Examples `indices` padded to the longest in the batch (tokens) and the most predictions.

        `epochs` (one per index, default 0) picks the masks of a dynamically masked corpus. A corpus
        without NSP (objective mlm) gives no next_sentence_label. Assembled with whole-array numpy
        (a loop over the shards the batch touches, not over its examples).
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and not (0 <= indices.min() and indices.max() < len(self)):
            bad = indices[(indices < 0) | (indices >= len(self))][0]
            raise IndexError(f"example {bad} out of range: the {self.split} split has {len(self)}")
        B = len(indices)
        shard_of = np.searchsorted(self._starts, indices, side="right") - 1  # (B,)
        rows = indices - self._starts[shard_of]
        starts, lengths = np.zeros(B, np.int64), np.zeros(B, np.int64)
        m_starts, m_counts = np.zeros(B, np.int64), np.zeros(B, np.int64)
        a_lens, nsp = np.zeros(B, np.int64), np.zeros(B, np.int64)
        shards = self._open()
        for s in np.unique(shard_of):
            mine, shard = shard_of == s, shards[s]
            r = rows[mine]
            starts[mine], lengths[mine] = shard["offsets"][r], shard["offsets"][r + 1] - shard["offsets"][r]
            m_starts[mine] = shard["mlm_offsets"][r]
            m_counts[mine] = shard["mlm_offsets"][r + 1] - m_starts[mine]
            a_lens[mine], nsp[mine] = shard["a_lens"][r], shard["next_sentence_labels"][r]
        T, P = int(lengths.max(initial=0)), int(m_counts.max(initial=0))
        tokens = np.arange(T) < lengths[:, None]  # (B, T) real tokens
        predicted = np.arange(P) < m_counts[:, None]  # (B, P) real prediction slots
        input_ids = np.full((B, T), self.pad_id, dtype=np.int64)
        mlm_positions = np.zeros((B, P), dtype=np.int64)
        mlm_labels = np.full((B, P), IGNORE_INDEX, dtype=np.int64)
        for s in np.unique(shard_of):
            shard, mine = shards[s], (shard_of == s)[:, None]
            token_at = (starts[:, None] + np.arange(T))[tokens & mine]
            input_ids[tokens & mine] = shard["input_ids"][token_at]
            slot_at = (m_starts[:, None] + np.arange(P))[predicted & mine]
            mlm_positions[predicted & mine] = shard["mlm_positions"][slot_at]
            mlm_labels[predicted & mine] = shard["mlm_labels"][slot_at]
        self._release()
        batch = {"input_ids": input_ids,
                 "token_type_ids": (tokens & (np.arange(T) >= a_lens[:, None] + 2)).astype(np.int64),
                 "attention_mask": tokens.astype(np.int64), "mlm_positions": mlm_positions,
                 "mlm_labels": mlm_labels}
        if self.has_nsp:
            batch["next_sentence_label"] = nsp
        if self.masking == "dynamic":
            epochs = np.zeros(len(indices), np.int64) if epochs is None else np.asarray(epochs).reshape(-1)
            mask_batch(batch, indices, epochs, self.masker(), self.manifest["masking_seed"])
        return batch

    def mean_length(self) -> float:
        """Mean tokens per example, from the manifest."""
        return sum(e.get("tokens", 0) for e in self._entries) / max(len(self), 1)

    def _release(self) -> None:
        """Unmap the pages a batch read: they stay in the OS's file cache, but no longer count as
        this process's memory. Without it, random reads over the memory maps (each fault maps the
        pages around it too) make the resident size climb towards the corpus's size."""
        for shard in self._shards or []:
            for array in shard.values():
                handle = getattr(array, "_mmap", None)
                if handle is not None and hasattr(handle, "madvise"):
                    handle.madvise(mmap.MADV_DONTNEED)

    def masker(self) -> Masker:
        """The masking rule the corpus was built with (for dynamic masking)."""
        if self._masker is None:
            from bertcli.tokenizer import load_tokenizer

            tokenizer = load_tokenizer(self.folder / "tokenizer")
            rule = MaskingRule(**self.manifest["masking_rule"])
            word_starts = tokenizer.word_start_table() if rule.whole_word_mask else None
            self._masker = Masker(tokenizer.vocab_size, tokenizer.special_ids, tokenizer.mask_id, rule=rule,
                                  word_starts=word_starts, unk_id=tokenizer.unk_id)
        return self._masker

    def example(self, i: int, epoch: int = 0) -> dict:
        """One example as Python lists (with the masks of `epoch` when masking is dynamic)."""
        ids, a_len, positions, labels, nsp = self._row(i)
        if self.masking == "dynamic":
            batch = self.batch([i], [epoch])
            ids, positions, labels = batch["input_ids"][0], batch["mlm_positions"][0], batch["mlm_labels"][0]
        example = {"input_ids": ids.tolist(), "token_type_ids": [0] * (a_len + 2) + [1] * (len(ids) - a_len - 2),
                   "mlm_positions": positions.tolist(), "mlm_labels": labels.tolist()}
        if self.has_nsp:
            example["next_sentence_label"] = nsp
        return example

    def _row(self, i: int):
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"example {i} out of range: the {self.split} split has {len(self)}")
        s = int(np.searchsorted(self._starts, i, side="right")) - 1
        shard = self._open()[s]
        r = i - int(self._starts[s])
        start, stop = shard["offsets"][r:r + 2]
        m_start, m_stop = shard["mlm_offsets"][r:r + 2]
        return (shard["input_ids"][start:stop], int(shard["a_lens"][r]), shard["mlm_positions"][m_start:m_stop],
                shard["mlm_labels"][m_start:m_stop], int(shard["next_sentence_labels"][r]))

    def _open(self) -> list[dict[str, np.ndarray]]:
        if self._shards is None:
            self._shards = [self._open_shard(entry) for entry in self._entries]
        return self._shards

    def _open_shard(self, entry: dict) -> dict[str, np.ndarray]:
        folder = self.folder / entry["path"]
        try:
            shard = {key: np.load(folder / f"{key}.npy", mmap_mode="r") for key in SHARD_FILES}
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder}: cannot read shard ({exc}); rebuild the corpus with "
                            f"`bertcli build-corpus`") from None
        n = entry["examples"]
        consistent = (len(shard["offsets"]) == n + 1 and shard["offsets"][-1] == len(shard["input_ids"])
                      and len(shard["mlm_offsets"]) == n + 1
                      and shard["mlm_offsets"][-1] == len(shard["mlm_positions"]) == len(shard["mlm_labels"])
                      and len(shard["a_lens"]) == len(shard["next_sentence_labels"]) == n)
        if not consistent:
            raise UserError(f"{folder}: shard arrays disagree with the manifest ({n} examples); the corpus "
                            f"is damaged, rebuild it with `bertcli build-corpus`")
        return shard


class ShardWriter:
    """Appends examples to one split's shards, shard_size examples to a shard, a few thousand at a time."""

    def __init__(self, folder: Path, split: str, shard_size: int, max_seq_len: int):
        self.folder, self.split, self.shard_size, self.max_seq_len = folder, split, shard_size, max_seq_len
        self.current: ShardFiles | None = None
        self.examples = 0
        self.shards: list[dict] = []

    def add(self, examples: Examples, order: np.ndarray, step: int = 4096) -> None:
        """Append examples[order], `step` rows at a time (the gather indices take 8 bytes a token)."""
        start = 0
        while start < len(order):
            if self.current is None:
                self.current = ShardFiles(self.folder, f"{self.split}/shard-{len(self.shards):05d}", self.max_seq_len)
            take = min(step, self.shard_size - self.current.examples, len(order) - start)
            self.current.append(examples.take(order[start:start + take]))
            start += take
            if self.current.examples == self.shard_size:
                self._close_shard()
        self.examples += len(order)

    def close(self) -> dict:
        if self.current is not None:
            self._close_shard()
        return {"examples": self.examples, "shards": self.shards}

    def _close_shard(self) -> None:
        self.shards.append(self.current.close())
        self.current = None
