"""Tokenizers: SentencePiece (trained by bertcli) and WordPiece (imported BERTs) behind one interface.

A tokenizer folder holds `bertcli_tokenizer.json` (backend, files, special tokens, lower-casing),
the backend's own files, and the usual manifest. Special tokens sit at fixed ids in every
SentencePiece model bertcli trains: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4. A WordPiece
vocabulary keeps the ids it came with (bert-base-uncased: [PAD]=0 [UNK]=100 [CLS]=101 ...), so
its settings file records them under "special_ids".

Folders written before the settings file had its own name hold it as `tokenizer_config.json`, the
name transformers uses for its own tokenizer settings; they are still read (the keys tell the two apart).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from bertcli import artifacts
from bertcli.errors import UserError
from bertcli.hf.folders import refuse_transformers_folder

TOKENIZER_CONFIG = "bertcli_tokenizer.json"
LEGACY_TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SPM_MODEL = "spm.model"
WORDPIECE_JSON = "tokenizer.json"
WORDPIECE_VOCAB = "vocab.txt"


class Tokenizer:
    """What the rest of bertcli needs from a tokenizer, whatever the backend."""

    backend = "abstract"

    def __init__(self, folder: Path, settings: dict, settings_file: str = TOKENIZER_CONFIG):
        self.folder = Path(folder)
        self.settings = settings
        self.settings_file = settings_file
        ids = settings["special_ids"]
        self.pad_id, self.unk_id = ids["[PAD]"], ids["[UNK]"]
        self.cls_id, self.sep_id, self.mask_id = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"]
        self.special_ids = frozenset(ids.values())

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def lowercase(self) -> bool:
        return bool(self.settings.get("lowercase", False))

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def id_to_piece(self, token_id: int) -> str:
        raise NotImplementedError

    def pieces(self, ids: list[int]) -> list[str]:
        return [self.id_to_piece(i) for i in ids]

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def word_start_table(self) -> "np.ndarray":
        """(vocab_size,) bool: does a piece begin a word? For whole-word masking. Special tokens
        count as word starts (they are never masked, and the piece after one starts a word)."""
        import numpy as np

        table = np.array([self._begins_word(self.id_to_piece(i)) for i in range(self.vocab_size)], dtype=bool)
        table[sorted(self.special_ids)] = True
        return table

    @staticmethod
    def _begins_word(piece: str) -> bool:
        raise NotImplementedError

    def files(self) -> list[str]:
        """The backend files that define the tokenizer (besides its settings file)."""
        return list(self.settings["files"])

    def fingerprint(self) -> str:
        """sha256 over the defining files: equal fingerprints tokenise identically."""
        digest = hashlib.sha256()
        for name in [self.settings_file] + self.files():
            digest.update((self.folder / name).read_bytes())
        return digest.hexdigest()

    def copy_to(self, folder: Path) -> None:
        """Copy the tokenizer into `folder` (a checkpoint's or corpus's tokenizer/).

        The copy is a tokenizer folder in its own right, so `build-corpus --tokenizer RUN/final/tokenizer`
        prepares a corpus for continued pretraining of that model.
        """
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.folder / self.settings_file, folder / TOKENIZER_CONFIG)
        for name in self.files():
            shutil.copy2(self.folder / name, folder / name)
        write_tokenizer_manifest(folder, self, {"copied_from": str(self.folder)})


def write_tokenizer_manifest(folder: Path, tokenizer: Tokenizer, config: dict, inputs: list[Path] | None = None) -> None:
    artifacts.write_manifest(folder, "tokenizer", config, inputs, backend=tokenizer.backend,
                             vocab_size=tokenizer.vocab_size, fingerprint=tokenizer.fingerprint())


class SentencePieceTokenizer(Tokenizer):
    backend = "sentencepiece"

    def __init__(self, folder: Path, settings: dict, settings_file: str = TOKENIZER_CONFIG):
        super().__init__(folder, settings, settings_file)
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(self.folder / settings["files"][0]))

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def id_to_piece(self, token_id: int) -> str:
        return self.sp.id_to_piece(token_id)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i not in self.special_ids])

    @staticmethod
    def _begins_word(piece: str) -> bool:
        return piece.startswith("\u2581")  # SentencePiece's word-boundary marker


class WordPieceTokenizer(Tokenizer):
    """BERT's WordPiece, run by the `tokenizers` library from a serialised tokenizer.json.

    The tokenizer.json holds the whole pipeline (BertNormalizer's lower-casing, accent stripping and
    CJK spacing, BertPreTokenizer, greedy longest-match WordPiece), so an imported model tokenises
    exactly as its Hugging Face fast tokenizer did; vocab.txt sits beside it for people and exports.
    """

    backend = "wordpiece"

    def __init__(self, folder: Path, settings: dict, settings_file: str = TOKENIZER_CONFIG):
        super().__init__(folder, settings, settings_file)
        from tokenizers import Tokenizer as HFTokenizer

        self.tok = HFTokenizer.from_file(str(self.folder / WORDPIECE_JSON))

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def id_to_piece(self, token_id: int) -> str:
        return self.tok.id_to_token(token_id)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    @staticmethod
    def _begins_word(piece: str) -> bool:
        return not piece.startswith("##")  # WordPiece marks continuations, not starts


BACKENDS: dict[str, type[Tokenizer]] = {"sentencepiece": SentencePieceTokenizer, "wordpiece": WordPieceTokenizer}


def settings_path(folder: Path) -> Path | None:
    """The tokenizer settings file of a bertcli tokenizer folder, under its name or the legacy one."""
    for name in (TOKENIZER_CONFIG, LEGACY_TOKENIZER_CONFIG):
        if (folder / name).is_file():
            return folder / name
    return None


def load_tokenizer(folder: str | Path) -> Tokenizer:
    folder = Path(folder)
    path = settings_path(folder)
    if path is None or path.name == LEGACY_TOKENIZER_CONFIG:
        refuse_transformers_folder(folder, "tokenizer folder")
    if path is None:
        raise UserError(f"{folder}: not a tokenizer folder (no {TOKENIZER_CONFIG}); "
                        f"make one with `bertcli tokenize train` or `bertcli convert --from hf`")
    damaged = f"{path}: damaged tokenizer settings"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{damaged} (not JSON); copy the tokenizer folder again")
    if not isinstance(settings, dict) or not isinstance(settings.get("files"), list) \
            or not set(SPECIAL_TOKENS) <= set(settings.get("special_ids", {})):
        raise UserError(f"{damaged} (needs backend, files and special_ids for {' '.join(SPECIAL_TOKENS)})")
    backend = BACKENDS.get(settings.get("backend"))
    if backend is None:
        raise UserError(f"{path}: unknown tokenizer backend {settings.get('backend')!r}; "
                        f"known: {', '.join(BACKENDS)}")
    for name in settings["files"]:
        # bare names only: a crafted "../x" must not make bertcli read or copy files elsewhere
        if not isinstance(name, str) or Path(name).name != name:
            raise UserError(f"{damaged} (file {name!r} is not a plain file name)")
        if not (folder / name).is_file():
            raise UserError(f"{folder / name}: missing tokenizer file; copy the whole tokenizer folder")
    try:
        return backend(folder, settings, path.name)
    except UserError:
        raise
    except Exception as exc:  # each backend's library raises its own types for a corrupt model file
        raise UserError(f"{folder}: cannot load the {settings['backend']} model ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'damaged'}); copy the tokenizer again")


class VocabularyTooLarge(UserError):
    """The text holds too few distinct pieces for the vocabulary asked for; the stage that trained
    says what would reach it (it knows how much text went in)."""

    def __init__(self, asked: int, limit: int | None, model_type: str):
        self.asked, self.limit, self.model_type = asked, limit, model_type
        most = f"at most {limit:,}" if limit else "fewer"
        super().__init__(f"tokenize train: the text yields {most} {model_type} pieces, not {asked:,}: lower "
                         f"--vocab-size{f' to {limit}' if limit else ''} or give more text")


def train_sentencepiece(lines, out: Path, vocab_size: int, model_type: str, lowercase: bool,
                        character_coverage: float, max_sentences: int, seed: int) -> None:
    """Train a SentencePiece model from an iterator of text lines into `out`."""
    import sentencepiece

    # nmt_nfkc_cf = NFKC + case folding, applied inside the model, so encoding needs no extra step
    # and an exported tokenizer lower-cases exactly as ours does.
    normalization = "nmt_nfkc_cf" if lowercase else "nmt_nfkc"
    sentencepiece.set_random_generator_seed(seed)  # the input-sentence sample is drawn from it
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_prefix=str(out / "spm"),
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            normalization_rule_name=normalization,
            pad_id=0, pad_piece="[PAD]", unk_id=1, unk_piece="[UNK]", bos_id=-1, eos_id=-1,
            # control symbols are never produced from text, so "[MASK]" typed in a book stays text
            control_symbols=["[CLS]", "[SEP]", "[MASK]"],
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as exc:
        message = str(exc).splitlines()[-1] if str(exc) else "training failed"
        message = message.rsplit("] ", 1)[-1]  # drop SentencePiece's source location and check text
        if "Vocabulary size" in message or "vocab_size" in message:
            limit = re.search(r"<= ?(\d+)", message)
            raise VocabularyTooLarge(vocab_size, int(limit.group(1)) if limit else None, model_type)
        raise UserError(f"tokenize train: SentencePiece failed: {message}")
    settings = {
        "backend": "sentencepiece",
        "files": [SPM_MODEL],
        "lowercase": lowercase,
        "model_type": model_type,
        "special_ids": {token: i for i, token in enumerate(SPECIAL_TOKENS)},
    }
    (out / TOKENIZER_CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
