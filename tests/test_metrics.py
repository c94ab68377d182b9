"""Our metrics equal the references the field uses: scikit-learn, scipy, seqeval, and the official
SQuAD normalisation (transformers ships the official script's functions)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bertcli.tasks.conll import read_conll
from bertcli.train.metrics import (average_ranks, classification_metrics, entity_metrics, entity_spans,
                                   normalize_answer, answer_f1, regression_metrics, squad_metrics)

from conftest import shared_data


def test_classification_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for num_labels in (2, 3, 5):
        labels = rng.integers(0, num_labels, 500)
        predictions = np.where(rng.random(500) < 0.7, labels, rng.integers(0, num_labels, 500))
        ours = classification_metrics(predictions, labels, num_labels)
        assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predictions))
        assert ours["mcc"] == pytest.approx(metrics.matthews_corrcoef(labels, predictions))
        average = "binary" if num_labels == 2 else "macro"
        assert ours["f1"] == pytest.approx(metrics.f1_score(labels, predictions, average=average))


def test_pearson_spearman_match_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    gold = np.round(rng.random(300) * 5, 1)  # many ties, as STS-B's scores have
    predicted = gold + rng.normal(0, 1.0, 300)
    predicted[:40] = np.round(predicted[:40])
    ours = regression_metrics(predicted, gold)
    assert ours["pearson"] == pytest.approx(stats.pearsonr(predicted, gold)[0], abs=1e-12)
    assert ours["spearman"] == pytest.approx(stats.spearmanr(predicted, gold)[0], abs=1e-12)
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == stats.rankdata([3, 1, 3, 2]).tolist()


def _perturb(tags: list[str], rng: random.Random, types: list[str]) -> list[str]:
    out = []
    for tag in tags:
        r = rng.random()
        if r < 0.08:
            tag = "O"
        elif r < 0.16:
            tag = f"{rng.choice('BI')}-{rng.choice(types)}"
        out.append(tag)
    return out


@pytest.mark.parametrize("scheme", ["iob2", "iob1"])
def test_entity_metrics_match_seqeval_on_conll(scheme):
    seqeval = pytest.importorskip("seqeval.metrics")
    sentences = read_conll(shared_data("ner/conll2003/valid.txt"))
    gold = sentences.tags[:800]
    if scheme == "iob1":  # IOB1: an entity opens with I- unless it follows one of its own type
        gold = [[("I" + t[1:]) if t.startswith("B-") and (i == 0 or s[i - 1][2:] != t[2:]) else t
                 for i, t in enumerate(s)] for s in gold]
    rng = random.Random(3)
    predicted = [_perturb(s, rng, ["PER", "LOC", "ORG", "MISC"]) for s in gold]
    ours = entity_metrics(gold, predicted)
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, predicted))
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, predicted))
    assert 0.3 < ours["f1"] < 0.95  # the perturbation made a real difference to count


def test_entity_spans_match_seqeval_get_entities():
    from_seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")
    cases = [["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"], ["I-A", "B-A", "I-A", "I-B"],
             ["O", "I-X"], ["B-X", "B-X", "I-Y", "O", "S-Z", "E-Z"]]
    for tags in cases:
        assert entity_spans(tags) == from_seqeval.get_entities(tags)


def test_squad_official_normalisation_and_f1():
    """Values worked by hand from evaluate-v1.1.py: lower case, drop string.punctuation, drop the
    articles a/an/the as whole words, collapse whitespace; F1 over the normalised tokens' bag."""
    assert normalize_answer("The Denver Broncos!") == "denver broncos"
    assert normalize_answer("Saint-Étienne,  an   apple") == "saintétienne apple"  # hyphen dropped, not split
    assert normalize_answer("theatre") == "theatre" and normalize_answer("A") == ""
    assert answer_f1("Denver", "the Denver Broncos") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert answer_f1("", "x") == 0.0 and answer_f1("a", "the") == 0.0  # nothing left to share
    assert answer_f1("broncos broncos", "broncos") == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # bag, not set
    result = squad_metrics(["Denver Broncos", "Paris"], [["The Denver Broncos", "Broncos"], ["London"]])
    assert result["exact_match"] == pytest.approx(50.0) and result["f1"] == pytest.approx(50.0)
    result = squad_metrics(["Broncos"], [["Denver Broncos", "the Broncos."]])
    assert result["exact_match"] == 100.0  # the best over gold answers
