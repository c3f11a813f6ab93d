"""The metrics' edges: empty inputs, missing relevance, single-string mistakes, mixed scripts, and
SQuAD's own punctuation rule."""

from __future__ import annotations

import pytest
import sacrebleu

from sage_platform.evaluation import corpus_bleu, exact_match, rouge, token_f1
from sage_platform.evaluation import retrieval_metrics as rm
from sage_platform.evaluation.labels import accuracy


def test_empty_inputs_score_zero() -> None:
    assert rouge([], []) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert token_f1([], []) == 0.0 and exact_match([], []) == 0.0
    assert rm.recall_at_k([], [], 5) == 0.0 and rm.mrr_at_k([], [], 10) == 0.0
    assert rm.ndcg_at_k([], [], 10) == 0.0 and rm.hit_rate_at_k([], [], 5) == 0.0


def test_a_query_with_no_relevant_documents_scores_zero_not_one() -> None:
    ranked, relevant = [["a", "b"], ["c"]], [[], ["c"]]
    assert rm.recall_at_k_per_query(ranked, relevant, 5) == [0.0, 1.0]
    assert rm.ndcg_at_k(ranked, relevant, 10) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rouge("a prediction", [["a reference"]]), "predictions and references must be sequences"),
        (lambda: token_f1(["a prediction"], "a reference"), "predictions and references must be sequences"),
        (lambda: exact_match([3], [["three"]]), "prediction 0 is int, not a string"),
        (lambda: accuracy("yes", ["yes"]), "predictions and labels must be sequences"),
        (lambda: accuracy(["yes"], "yes"), "predictions and labels must be sequences"),
    ],
)
def test_a_string_or_a_number_where_a_list_belongs_is_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


def test_a_sample_may_give_one_reference_as_a_plain_string() -> None:
    assert token_f1(["the cat sat"], ["the cat sat"]) == 100.0
    assert rouge(["the cat sat"], ["the cat sat"])["rouge1"] == pytest.approx(1.0)
    assert exact_match(["The cat sat."], ["the cat sat"]) == 100.0


def test_cjk_on_either_side_tokenizes_by_character_and_ignores_case() -> None:
    # Only the reference is Chinese: the prediction still shares two characters of three.
    assert rouge(["大熊"], [["大熊猫"]])["rouge1"] == pytest.approx(0.8)  # F1 of precision 1, recall 2/3
    assert rouge(["大熊猫"], [["大熊"]])["rouge1"] == pytest.approx(0.8)
    assert rouge(["Python很好"], [["python很好"]])["rouge1"] == pytest.approx(1.0)
    assert corpus_bleu(["大熊猫吃竹子"], [["大熊猫吃竹子"]]) == pytest.approx(100.0)
    assert corpus_bleu(["大熊猫吃竹子"], [["大熊猫喜欢吃竹子"]])


def test_english_answers_drop_only_ascii_punctuation_like_squad() -> None:
    """SQuAD's script removes string.punctuation only: a curly apostrophe still separates answers."""
    assert exact_match(["don't"], [["dont"]]) == 100.0
    assert exact_match(["don\u2019t"], [["dont"]]) == 0.0
    assert exact_match(["\u5927\u718a\u732b\u3002"], [["\u5927\u718a\u732b"]]) == 100.0  # CJK punctuation goes


def test_cjk_on_one_side_only_still_switches_to_character_tokens() -> None:
    # ROUGE: the CJK character counts as a token whichever side holds it (rouge_score alone drops it).
    assert rouge(["cat 猫"], [["cat"]])["rouge1"] == pytest.approx(2 / 3)
    assert rouge(["cat"], [["cat 猫"]])["rouge1"] == pytest.approx(2 / 3)
    assert rouge(["Python很好"], [["java很好"]])["rouge1"] == pytest.approx(2 / 3)  # Latin words kept
    # BLEU: sacrebleu's zh tokenizer for the whole corpus as soon as either side has CJK.
    english = "the cat sat on the mat"
    assert corpus_bleu([f"{english} 大熊猫"], [[english]]) == pytest.approx(
        sacrebleu.corpus_bleu([f"{english} 大熊猫"], [[english]], tokenize="zh").score
    )
    assert corpus_bleu([english], [[f"{english} 大熊猫"]]) == pytest.approx(
        sacrebleu.corpus_bleu([english], [[f"{english} 大熊猫"]], tokenize="zh").score
    )
    assert corpus_bleu([english], [[f"{english} 大熊猫"]]) != pytest.approx(
        sacrebleu.corpus_bleu([english], [[f"{english} 大熊猫"]]).score
    )


def test_a_reference_that_is_neither_text_nor_a_list_is_named() -> None:
    with pytest.raises(ValueError, match="reference"):
        token_f1(["x"], [5])  # type: ignore[list-item]
