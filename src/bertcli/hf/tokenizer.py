"""Tokenizers to and from Hugging Face folders.

Import: a BERT folder's tokenizer.json or vocab.txt becomes a bertcli WordPiece tokenizer folder
that tokenises as transformers' AutoTokenizer of the same folder does. Export: any bertcli
tokenizer becomes a tokenizer.json + tokenizer_config.json that AutoTokenizer loads offline and
that gives our ids; a SentencePiece model is rebuilt as a `tokenizers` Unigram or BPE pipeline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizer

from bertcli.errors import UserError
from bertcli.hf.folders import HF_TOKENIZER_CONFIG
from bertcli.tokenizer import (
    SPECIAL_TOKENS,
    TOKENIZER_CONFIG,
    WORDPIECE_JSON,
    WORDPIECE_VOCAB,
    Tokenizer,
    load_tokenizer,
)

HF_SPECIAL_MAP = "special_tokens_map.json"
# Role in bertcli ([PAD] ...) -> the tokenizer_config.json key that names its piece in transformers.
_ROLE_KEYS = dict(zip(SPECIAL_TOKENS, ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")))
# transformers' BertTokenizer rebuilds the normalizer from tokenizer_config.json (with these defaults)
# whatever tokenizer.json says; a tokenizer_class of PreTrainedTokenizerFast keeps tokenizer.json's.
_BERT_CLASSES = ("BertTokenizer", "BertTokenizerFast")


def read_json(path: Path) -> dict:
    """A JSON object from a Hugging Face folder; {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); the Hugging Face folder is damaged")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; the Hugging Face folder is damaged")
    return data


def _special_pieces(hf_dir: Path, hf_config: dict) -> dict[str, str]:
    """Role -> piece, from tokenizer_config.json or special_tokens_map.json ({"content": ...} or a string)."""
    named = {**read_json(hf_dir / HF_SPECIAL_MAP), **hf_config}
    pieces = {}
    for role, key in _ROLE_KEYS.items():
        value = named.get(key, role)
        pieces[role] = value.get("content", role) if isinstance(value, dict) else str(value)
    return pieces


def _wordpiece_from_vocab(vocab_file: Path, unk: str) -> HFTokenizer:
    try:
        model = models.WordPiece.from_file(str(vocab_file), unk_token=unk, max_input_chars_per_word=100)
    except Exception as exc:  # tokenizers raises its own Exception type for unreadable files
        raise UserError(f"{vocab_file}: cannot read the WordPiece vocabulary ({exc})")
    tok = HFTokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def _bert_normalizer(hf_config: dict) -> normalizers.BertNormalizer:
    """BERT's BasicTokenizer settings as transformers' BertTokenizer reads them (and its defaults)."""
    return normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=bool(hf_config.get("tokenize_chinese_chars", True)),
        strip_accents=hf_config.get("strip_accents"),  # None: strip when lower-casing, as BERT does
        lowercase=bool(hf_config.get("do_lower_case", True)),
    )


def _bert_template(tok: HFTokenizer, cls: str, sep: str) -> processors.TemplateProcessing:
    """[CLS] A [SEP] and [CLS] A [SEP] B [SEP], with segment 1 for B (Devlin et al. 2019, section 3)."""
    return processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
    )


def import_wordpiece(hf_dir: Path, out: Path, vocab_size: int) -> Tokenizer:
    """Write a bertcli WordPiece tokenizer folder at `out` from a Hugging Face BERT folder."""
    hf_config = read_json(hf_dir / HF_TOKENIZER_CONFIG)
    pieces = _special_pieces(hf_dir, hf_config)
    json_file, vocab_file = hf_dir / WORDPIECE_JSON, hf_dir / WORDPIECE_VOCAB
    if json_file.is_file():
        source = json_file
        try:
            tok = HFTokenizer.from_file(str(json_file))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise UserError(f"{json_file}: cannot read the tokenizer ({exc})")
        kind = json.loads(tok.to_str())["model"]["type"]
        if kind != "WordPiece":
            raise UserError(f"{json_file}: a {kind} tokenizer; bertcli imports BERT's WordPiece only")
        if hf_config.get("tokenizer_class", "BertTokenizer") in _BERT_CLASSES:
            tok.normalizer = _bert_normalizer(hf_config)
    elif vocab_file.is_file():
        source = vocab_file
        tok = _wordpiece_from_vocab(vocab_file, pieces["[UNK]"])
        tok.normalizer = _bert_normalizer(hf_config)
    else:
        raise UserError(f"{hf_dir}: no {WORDPIECE_JSON} or {WORDPIECE_VOCAB}; a BERT folder needs its tokenizer")

    # Fixed-length padding and truncation in a tokenizer.json (all-MiniLM's pads to 128) are call
    # settings in transformers, not part of tokenisation; bertcli pads and truncates per batch.
    tok.no_padding()
    tok.no_truncation()
    missing = [f"{role} ({piece!r})" for role, piece in pieces.items() if tok.token_to_id(piece) is None]
    if missing:
        raise UserError(f"{source}: special token(s) {', '.join(missing)} not in the vocabulary")
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in pieces.values()])
    tok.post_processor = _bert_template(tok, pieces["[CLS]"], pieces["[SEP]"])

    vocab = tok.get_vocab(with_added_tokens=True)
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise UserError(f"{source}: token ids are not 0..{len(vocab) - 1} "
                        f"without gaps (a repeated or missing entry?); not a usable vocabulary")
    if len(vocab) != vocab_size:
        raise UserError(f"{source}: {len(vocab)} tokens but config.json has vocab_size {vocab_size}; "
                        f"the tokenizer and the weights do not belong together")

    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / WORDPIECE_JSON))
    by_id = sorted(vocab, key=vocab.__getitem__)
    (out / WORDPIECE_VOCAB).write_text("".join(piece + "\n" for piece in by_id), encoding="utf-8")
    normalizer = json.loads(tok.to_str())["normalizer"] or {}
    settings = {
        "backend": "wordpiece",
        "files": [WORDPIECE_JSON, WORDPIECE_VOCAB],
        "lowercase": bool(normalizer.get("lowercase", False)),
        "special_ids": {role: vocab[piece] for role, piece in pieces.items()},
    }
    (out / TOKENIZER_CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return load_tokenizer(out)


def export_tokenizer(tokenizer: Tokenizer, out: Path, model_max_length: int, segments: bool = True) -> None:
    """Write tokenizer.json + tokenizer_config.json (+ vocab.txt for WordPiece) into a Hugging Face folder.
    segments=False: a model without segment embeddings (ModernBERT), whose forward takes no token_type_ids,
    so the tokenizer must not return them."""
    pieces = {role: tokenizer.id_to_piece(tokenizer.settings["special_ids"][role]) for role in SPECIAL_TOKENS}
    hf_config = {key: pieces[role] for role, key in _ROLE_KEYS.items()}
    hf_config["model_max_length"] = model_max_length
    # BERT takes segment ids; a generic PreTrainedTokenizerFast returns them only when asked to here.
    hf_config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"] if segments else [
        "input_ids", "attention_mask"]
    if tokenizer.backend == "wordpiece":
        tok = tokenizer.tok
        normalizer = json.loads(tok.to_str())["normalizer"] or {}
        # BertTokenizer rebuilds its normalizer from these three keys, so they must say what ours does.
        hf_config.update(tokenizer_class="BertTokenizer", do_lower_case=bool(normalizer.get("lowercase", False)),
                         strip_accents=normalizer.get("strip_accents"),
                         tokenize_chinese_chars=bool(normalizer.get("handle_chinese_chars", True)))
        shutil.copy2(tokenizer.folder / WORDPIECE_VOCAB, out / WORDPIECE_VOCAB)
    elif tokenizer.backend == "sentencepiece":
        tok = sentencepiece_pipeline(tokenizer)
        hf_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    else:
        raise UserError(f"{tokenizer.folder}: cannot export a {tokenizer.backend} tokenizer to Hugging Face")
    tok.save(str(out / WORDPIECE_JSON))
    (out / HF_TOKENIZER_CONFIG).write_text(json.dumps(hf_config, indent=2) + "\n", encoding="utf-8")


def sentencepiece_pipeline(tokenizer: Tokenizer) -> HFTokenizer:
    """bertcli's SentencePiece model as a `tokenizers` pipeline that gives the same ids.

    SentencePiece (Kudo & Richardson 2018) normalises with a precompiled character map (NFKC, plus
    case folding for bertcli's lower-cased models), strips and collapses spaces, marks word starts
    with U+2581 including a dummy prefix, then segments: Viterbi over piece log-probabilities for
    unigram, highest-scoring adjacent merge first for BPE. Pieces never span a U+2581 inside
    (split_by_whitespace), so no pre-tokenizer is needed.

    One deliberate difference: [CLS], [SEP], [MASK] ... typed in the text are special tokens in
    transformers (fill-mask needs "the [MASK] of France" to hold the mask id), while SentencePiece
    reads control symbols in text as plain characters.
    """
    sp = tokenizer.sp
    spec = _normalizer_spec(sp.serialized_model_proto())
    if any(sp.is_byte(i) for i in range(sp.get_piece_size())):
        raise UserError(f"{tokenizer.folder}: byte-fallback SentencePiece models cannot be exported")
    unk = sp.id_to_piece(sp.unk_id())
    if tokenizer.settings.get("model_type", "unigram") == "bpe":
        vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
        tok = HFTokenizer(models.BPE(vocab=vocab, merges=_bpe_merges(sp), unk_token=unk, fuse_unk=True))
    else:
        scores = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
        tok = HFTokenizer(models.Unigram(scores, unk_id=sp.unk_id(), byte_fallback=False))

    steps = []
    if spec["precompiled_charsmap"]:
        steps.append(normalizers.Precompiled(spec["precompiled_charsmap"]))
    if spec["remove_extra_whitespaces"]:
        # SentencePiece trims and collapses ASCII spaces only; other whitespace is the charsmap's job.
        steps += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if spec["escape_whitespaces"]:
        steps.append(normalizers.Replace(" ", "\u2581"))
    if spec["add_dummy_prefix"]:
        steps.append(normalizers.Prepend("\u2581"))
    tok.normalizer = normalizers.Sequence(steps)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)

    pieces = [tokenizer.id_to_piece(tokenizer.settings["special_ids"][role]) for role in SPECIAL_TOKENS]
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in pieces])
    tok.post_processor = _bert_template(tok, pieces[2], pieces[3])
    return tok


def _bpe_merges(sp) -> list[tuple[str, str]]:
    """Merges for `tokenizers` BPE from a SentencePiece BPE model, ranked as SentencePiece applies them.

    SentencePiece BPE merges the adjacent pair whose union is the highest-scoring piece; so every
    split of a normal piece into two normal pieces is a merge, ranked by the piece's score (ties by id).
    """
    normal = {sp.id_to_piece(i): (sp.get_score(i), i) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))}
    ranked = []
    for piece, (score, index) in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-score, index, left, right))
    return [(left, right) for _, _, left, right in sorted(ranked)]


def _normalizer_spec(model_proto: bytes) -> dict:
    """The NormalizerSpec (field 3) of a SentencePiece ModelProto, read straight off the wire format.

    Field numbers from sentencepiece_model.proto: 2 precompiled_charsmap, 3 add_dummy_prefix,
    4 remove_extra_whitespaces, 5 escape_whitespaces (the three flags default to true). Reading the
    wire format here saves a protobuf dependency for four fields.
    """
    fields = _proto_fields(_proto_fields(model_proto).get(3, b""))
    return {
        "precompiled_charsmap": fields.get(2, b""),
        "add_dummy_prefix": bool(fields.get(3, 1)),
        "remove_extra_whitespaces": bool(fields.get(4, 1)),
        "escape_whitespaces": bool(fields.get(5, 1)),
    }


def _proto_fields(buf: bytes) -> dict[int, int | bytes]:
    """Field number -> value (the last one for repeated fields) of one protobuf message."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(buf, pos)
        elif wire_type == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire_type in (1, 5):  # fixed64 / fixed32 (scores are floats)
            width = 8 if wire_type == 1 else 4
            value, pos = buf[pos:pos + width], pos + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields[number] = value
    return fields


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
