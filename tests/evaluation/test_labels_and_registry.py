import pytest

from sage_platform.evaluation.gate import compare_scores
from sage_platform.evaluation.labels import accuracy, label_from_answer
from sage_platform.evaluation.registry import compute
from tests.conftest import pubmedqa_items


def test_accuracy_on_pubmedqa_labels() -> None:
    labels = [item["final_decision"] for _, item in pubmedqa_items(200)]
    always_yes = ["yes"] * len(labels)
    assert accuracy(always_yes, labels) == pytest.approx(labels.count("yes") / len(labels), abs=1e-12)
    assert accuracy([label.upper() + " " for label in labels], labels) == 1.0
    assert accuracy([None, "no"], ["yes", "no"]) == 0.5
    assert accuracy([], []) == 0.0


def test_accuracy_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 labels"):
        accuracy(["yes", "no"], ["yes"])
    with pytest.raises(ValueError, match="label 0 is None"):
        accuracy(["yes"], [None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="prediction 0 is int"):
        accuracy([1], ["yes"])  # type: ignore[list-item]


def test_labels_are_read_from_free_text() -> None:
    assert label_from_answer("Yes. Screening increased adherence.") == "yes"
    assert label_from_answer("The evidence is inconclusive; maybe, but no trial showed it.") == "maybe"
    assert label_from_answer("Nothing to say") is None
    assert label_from_answer("Notably, yesterday") is None  # whole words only


def test_registry_computes_by_name_and_rejects_unknown_names() -> None:
    predictions, references = ["the cat sat"], [["the cat sat down"]]
    assert compute("f1", predictions, references) == pytest.approx(80.0)  # "cat sat" in "cat sat down"
    assert compute("rougeL", predictions, references) > 0
    assert compute("recall@1", [["a", "b"]], [["b"]]) == 0.0
    assert compute("mrr@5", [["a", "b"]], [["b"]]) == 0.5
    assert compute("accuracy", ["yes"], ["yes"]) == 1.0
    with pytest.raises(ValueError, match="unknown metric 'bleurt'; valid: bleu, rouge1"):
        compute("bleurt", predictions, references)
    with pytest.raises(ValueError, match="unknown metric 'recall@0'"):
        compute("recall@0", [["a"]], [["a"]])


def test_regression_gate_compares_in_points() -> None:
    previous = {"bleu": 20.0, "f1": 40.0, "recall@5": 0.90, "rougeL": 0.30}
    current = {"bleu": 18.5, "f1": 40.5, "recall@5": 0.85, "rougeL": 0.29}
    gate = compare_scores(previous, current, margin=2.0)
    assert gate.regressions == ["recall@5"]  # -5 points; bleu -1.5 and rougeL -1 are within the margin
    assert not gate.passed and "recall@5" in gate.summary
    rows = {metric: (old, new, round(delta, 2) if delta is not None else None) for metric, old, new, delta in gate.rows}
    assert rows["recall@5"] == (0.90, 0.85, -5.0) and rows["bleu"] == (20.0, 18.5, -1.5)
    assert compare_scores(previous, previous).passed
