import numpy as np
import pytest

from bertcli.config import TaskDataConfig
from bertcli.tasks.labelled import encode_examples, label_ids, label_names, read_examples, truncate_pair
from bertcli.errors import UserError
from bertcli.tokenizer import load_tokenizer

from conftest import shared_data


def test_sst2_single_sentence_columns():
    examples = read_examples(shared_data("glue/sst2/dev.tsv"), TaskDataConfig())
    assert examples.columns == ("sentence", None, "label")
    assert len(examples.texts) == 872 and examples.pairs is None
    assert label_names(examples.labels) == ["0", "1"]


def test_mrpc_pair_columns_with_bom_and_quotes():
    examples = read_examples(shared_data("glue/mrpc/dev.tsv"), TaskDataConfig())
    assert examples.columns == ("#1 String", "#2 String", "Quality")
    assert len(examples.texts) == 408
    assert any('"' in text for text in examples.texts)  # bare quotes are text, not CSV quoting


def test_qnli_reads_question_sentence_pair():
    examples = read_examples(shared_data("glue/qnli/dev.tsv"), TaskDataConfig())
    assert examples.columns == ("question", "sentence", "label")
    assert label_names(examples.labels) == ["entailment", "not_entailment"]


def test_csv_and_jsonl_with_named_columns(tmp_path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('review,stars\n"good, very good",5\nbad,1\n')
    cfg = TaskDataConfig(text_column="review", label_column="stars")
    examples = read_examples(csv_path, cfg)
    assert examples.texts == ["good, very good", "bad"] and examples.labels == ["5", "1"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a", "label": "pos"}\n\n{"text": "b", "label": "neg"}\n')
    examples = read_examples(jsonl, TaskDataConfig())
    assert examples.texts == ["a", "b"] and examples.lines == [1, 3]


def test_errors_name_file_line_and_fix(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine\t1\ntoo\tmany\tcolumns\n")
    with pytest.raises(UserError, match=r"bad.tsv:3: 3 columns but the header has 2"):
        read_examples(bad, TaskDataConfig())
    nolabel = tmp_path / "nolabel.tsv"
    nolabel.write_text("sentence\tscore_x\nfine\t1\n")
    with pytest.raises(UserError, match=r"no label column .*--set data.label_column=NAME"):
        read_examples(nolabel, TaskDataConfig())
    unknown = tmp_path / "dev.tsv"
    unknown.write_text("sentence\tlabel\nok\t1\nhuh\t7\n")
    with pytest.raises(UserError, match=r"dev.tsv:3: unknown label '7'; the model knows '0', '1'"):
        label_ids(read_examples(unknown, TaskDataConfig()), ["0", "1"])


def test_truncate_pair_trims_the_longer_from_the_end():
    a, b = truncate_pair([1, 2, 3, 4, 5], [6, 7], 5)
    assert (a, b) == ([1, 2, 3], [6, 7])


def test_encoding_builds_cls_a_sep_b_sep(tokenizer_dir):
    tokenizer = load_tokenizer(tokenizer_dir)
    path = tokenizer_dir.parent / "pairs.tsv"
    path.write_text("sentence1\tsentence2\tlabel\nthe if statement\tis used for loops\t1\n")
    examples = read_examples(path, TaskDataConfig())
    encoded = encode_examples(examples, tokenizer, 32, np.array([1]))
    ids, types = encoded.input_ids[0], encoded.token_type_ids[0]
    a, b = tokenizer.encode("the if statement"), tokenizer.encode("is used for loops")
    assert ids.tolist() == [tokenizer.cls_id, *a, tokenizer.sep_id, *b, tokenizer.sep_id]
    assert types.tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    batch = encoded.batch([0], tokenizer.pad_id)
    assert batch["attention_mask"].sum() == len(ids)


def test_scores_are_not_classes(tmp_path):
    path = tmp_path / "stsb.tsv"
    path.write_text("sentence1\tsentence2\tlabel\na\tb\t2.750\nc\td\t4\n")
    examples = read_examples(path, TaskDataConfig())
    with pytest.raises(UserError, match=r"label '2.750' is a score, not a class"):
        label_names(examples.labels, path)


def test_jsonl_row_missing_a_field(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "pos"}\n{"label": "neg"}\n')
    with pytest.raises(UserError, match=r"d.jsonl:2: no field 'text'"):
        read_examples(path, TaskDataConfig())
