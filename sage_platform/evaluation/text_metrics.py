"""Answer-quality metrics, computed exactly as their reference implementations do.

Each takes ``predictions`` (one string per sample) and ``references`` (a list of strings per
sample). Scales follow the references: BLEU, exact match and F1 on 0–100; ROUGE F on 0–1.

Usage::

    corpus_bleu(["the cat sat"], [["the cat sat down"]])     # sacrebleu, 13a tokenizer
    rouge(["the cat"], [["a cat"]])                         # {"rouge1": …, "rouge2": …, "rougeL": …}
    exact_match(["Paris"], [["paris", "Paris, France"]])   # 100.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sage_platform.text_search import CJK_CLASS, has_cjk

_MIXED_TOKENS = re.compile(f"[{CJK_CLASS}]|[^\\s{CJK_CLASS}]+")  # a CJK character, or a run of others
_CJK_PUNCTUATION = "，。！？、；：（）《》“”‘’「」『』【】…—·"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DROP_ALL_PUNCTUATION = str.maketrans("", "", string.punctuation + _CJK_PUNCTUATION)


def _validate(predictions: Sequence[Any], references: Sequence[Any]) -> list[list[str]]:
    if isinstance(predictions, str) or isinstance(references, str):
        raise ValueError("predictions and references must be sequences, not a single string")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    for i, prediction in enumerate(predictions):
        if not isinstance(prediction, str):
            raise ValueError(f"prediction {i} is {type(prediction).__name__}, not a string")
    refs: list[list[str]] = []
    for i, options in enumerate(references):
        if isinstance(options, str):
            options = [options]
        if options is None or not isinstance(options, Sequence) or len(options) == 0:
            raise ValueError(f"sample {i} has no reference answers")
        for reference in options:
            if not isinstance(reference, str):
                raise ValueError(f"a reference of sample {i} is {type(reference).__name__}, not a string")
        refs.append(list(options))
    return refs


def corpus_bleu(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu corpus BLEU (0–100); the ``zh`` tokenizer when the text is Chinese."""
    import sacrebleu

    refs = _validate(predictions, references)
    if not predictions:
        return 0.0
    width = max(len(r) for r in refs)
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(width)]
    chinese = has_cjk("\n".join(predictions), "\n".join(x for r in refs for x in r))  # one scan, not 20,000
    tokenize = "zh" if chinese else "13a"
    return float(sacrebleu.corpus_bleu(list(predictions), streams, tokenize=tokenize).score)  # type: ignore[arg-type]


class _CharTokenizer:
    """rouge_score drops non-Latin text; for CJK every character is a token, other runs are words."""

    _TOKENS = re.compile(f"[{CJK_CLASS}]|[a-z0-9]+")

    def tokenize(self, text: str) -> list[str]:
        return self._TOKENS.findall(text.lower())


class _CachedStemTokenizer:
    """rouge_score's own tokenizer and Porter stemmer, with each word stemmed once and each text
    tokenized once: stemming is most of rouge_score's time, and the results are identical."""

    def __init__(self) -> None:
        from nltk.stem import porter
        from rouge_score import tokenize

        self._tokenize = tokenize.tokenize
        self.stem = lru_cache(maxsize=1 << 18)(porter.PorterStemmer().stem)
        self.tokenize = lru_cache(maxsize=1 << 14)(self._tokens)

    def _tokens(self, text: str) -> list[str]:
        return list(self._tokenize(text, self))  # rouge_score calls self.stem for words over three letters


@lru_cache(maxsize=2)
def _scorer(cjk: bool) -> Any:
    from rouge_score import rouge_scorer

    tokenizer = _CharTokenizer() if cjk else _CachedStemTokenizer()
    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tokenizer)


def rouge_per_sample(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[dict[str, float]]:
    refs = _validate(predictions, references)
    out = []
    for prediction, options in zip(predictions, refs, strict=True):
        scorer = _scorer(has_cjk(prediction, *options))
        best = scorer.score_multi(options, prediction)
        out.append({name: float(score.fmeasure) for name, score in best.items()})
    return out


def rouge(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (0–1), best reference per sample, Porter stemmer on English."""
    per_sample = rouge_per_sample(predictions, references)
    keys = ("rouge1", "rouge2", "rougeL")
    if not per_sample:
        return dict.fromkeys(keys, 0.0)
    return {key: sum(s[key] for s in per_sample) / len(per_sample) for key in keys}


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, drop punctuation and articles, collapse white space.

    Text with CJK characters also loses CJK punctuation, as in the CMRC 2018 evaluation.
    """
    text = text.lower().translate(_DROP_ALL_PUNCTUATION if has_cjk(text) else _DROP_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    """SQuAD tokens; CJK characters count one each, as the CMRC 2018 evaluation does."""
    normalized = normalize_answer(text)
    if not has_cjk(normalized):
        return normalized.split()
    return _MIXED_TOKENS.findall(normalized)


def _f1(prediction: str, reference: str) -> float:
    pred, gold = answer_tokens(prediction), answer_tokens(reference)
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match_per_sample(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    refs = _validate(predictions, references)
    return [
        100.0 * max(float(normalize_answer(p) == normalize_answer(r)) for r in options)
        for p, options in zip(predictions, refs, strict=True)
    ]


def token_f1_per_sample(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
    refs = _validate(predictions, references)
    return [100.0 * max(_f1(p, r) for r in options) for p, options in zip(predictions, refs, strict=True)]


def exact_match(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    scores = exact_match_per_sample(predictions, references)
    return sum(scores) / len(scores) if scores else 0.0


def token_f1(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    scores = token_f1_per_sample(predictions, references)
    return sum(scores) / len(scores) if scores else 0.0
