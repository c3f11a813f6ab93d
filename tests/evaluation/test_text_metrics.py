"""Our metrics against the reference implementations, on real PubMedQA text."""

import random

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from sage_platform.evaluation import corpus_bleu, exact_match, rouge, token_f1
from tests.conftest import pubmedqa_items


@pytest.fixture(scope="module")
def samples() -> tuple[list[str], list[list[str]]]:
    """Predictions of several kinds against LONG_ANSWER: exact, a context sentence, a shuffle, empty."""
    rng = random.Random(3)
    predictions, references = [], []
    for i, (_, item) in enumerate(pubmedqa_items(120)):
        answer = item["LONG_ANSWER"]
        kind = i % 4
        if kind == 0:
            prediction = answer
        elif kind == 1:
            prediction = item["CONTEXTS"][0]
        elif kind == 2:
            words = answer.split()
            rng.shuffle(words)
            prediction = " ".join(words[: len(words) // 2])
        else:
            prediction = ""
        predictions.append(prediction)
        references.append([answer])
    return predictions, references


def test_bleu_equals_sacrebleu(samples) -> None:  # type: ignore[no-untyped-def]
    predictions, references = samples
    expected = sacrebleu.corpus_bleu(predictions, [[r[0] for r in references]]).score
    assert corpus_bleu(predictions, references) == pytest.approx(expected, abs=1e-9)


def test_bleu_with_multiple_references(samples) -> None:  # type: ignore[no-untyped-def]
    predictions, references = samples
    multi = [r + [p] if i % 3 == 0 else r for i, (p, r) in enumerate(zip(predictions, references, strict=True))]
    streams = [[r[0] for r in multi], [r[1] if len(r) > 1 else None for r in multi]]
    expected = sacrebleu.corpus_bleu(predictions, streams).score  # type: ignore[arg-type]
    assert corpus_bleu(predictions, multi) == pytest.approx(expected, abs=1e-9)


def test_rouge_equals_rouge_score(samples) -> None:  # type: ignore[no-untyped-def]
    predictions, references = samples
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(r[0], p) for p, r in zip(predictions, references, strict=True)]
    ours = rouge(predictions, references)
    for key in ("rouge1", "rouge2", "rougeL"):
        expected = sum(s[key].fmeasure for s in scores) / len(scores)
        assert ours[key] == pytest.approx(expected, abs=1e-9)


def _squad_reference(prediction: str, truth: str) -> tuple[float, float]:
    """The SQuAD v1.1 official script's normalisation and scoring, restated."""
    import re
    import string
    from collections import Counter

    def normalize(s: str) -> str:
        s = s.lower()
        s = "".join(ch for ch in s if ch not in set(string.punctuation))
        s = re.sub(r"\b(a|an|the)\b", " ", s)
        return " ".join(s.split())

    em = float(normalize(prediction) == normalize(truth))
    p, g = normalize(prediction).split(), normalize(truth).split()
    same = sum((Counter(p) & Counter(g)).values())
    f1 = 0.0 if same == 0 else 2 * (same / len(p)) * (same / len(g)) / ((same / len(p)) + (same / len(g)))
    return em, f1


def test_exact_match_and_f1_follow_squad(samples) -> None:  # type: ignore[no-untyped-def]
    predictions, references = samples
    pairs = [_squad_reference(p, r[0]) for p, r in zip(predictions, references, strict=True)]
    assert exact_match(predictions, references) == pytest.approx(100 * sum(e for e, _ in pairs) / len(pairs), abs=1e-9)
    assert token_f1(predictions, references) == pytest.approx(100 * sum(f for _, f in pairs) / len(pairs), abs=1e-9)


def test_squad_normalisation_and_best_reference() -> None:
    assert exact_match(["The Eiffel Tower!"], [["eiffel tower"]]) == 100.0
    assert exact_match(["Paris"], [["London", "paris"]]) == 100.0
    assert token_f1(["the cat sat"], [["a cat sat down"]]) == pytest.approx(100 * 2 * 1 * (2 / 3) / (1 + 2 / 3))


def test_chinese_text_is_scored_per_character() -> None:
    assert token_f1(["北京大学"], [["北京"]]) == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)
    assert exact_match(["北京。"], [["北京"]]) == 100.0
    scores = rouge(["我爱北京"], [["我爱上海"]])
    assert scores["rouge1"] == pytest.approx(0.5) and scores["rouge2"] == pytest.approx(1 / 3)
    expected = sacrebleu.corpus_bleu(["我爱北京天安门"], [["我爱北京天安门广场"]], tokenize="zh").score
    assert corpus_bleu(["我爱北京天安门"], [["我爱北京天安门广场"]]) == pytest.approx(expected, abs=1e-9)
    assert expected > 0


def test_empty_inputs_and_errors() -> None:
    assert exact_match([], []) == 0.0 and corpus_bleu([], []) == 0.0
    assert token_f1([""], [["something"]]) == 0.0
    with pytest.raises(ValueError, match="2 predictions but 1 reference"):
        token_f1(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="sample 0 has no reference"):
        exact_match(["a"], [[]])
    with pytest.raises(ValueError, match="prediction 0 is NoneType"):
        rouge([None], [["a"]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="is int, not a string"):
        corpus_bleu(["a"], [[3]])  # type: ignore[list-item]


def test_rouge_takes_the_best_of_several_references_like_score_multi(samples) -> None:  # type: ignore[no-untyped-def]
    predictions, references = samples
    multi = [r + [predictions[(i + 7) % len(predictions)] or "x"] for i, r in enumerate(references)]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = [scorer.score_multi(r, p) for p, r in zip(predictions, multi, strict=True)]
    ours = rouge(predictions, multi)
    for key in ("rouge1", "rouge2", "rougeL"):
        assert ours[key] == pytest.approx(sum(e[key].fmeasure for e in expected) / len(expected), abs=1e-9)


def test_exact_match_and_f1_take_the_best_reference() -> None:
    predictions = ["Paris", "a red apple", ""]
    references = [["London", "paris"], ["green apple", "the red apple!"], ["x", "y"]]
    assert exact_match(predictions, references) == pytest.approx(100 * 2 / 3)
    assert token_f1(predictions, references) == pytest.approx(100 * 2 / 3)
