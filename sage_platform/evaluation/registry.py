"""Every metric by name, for reports and scripts: ``compute("rougeL", predictions, references)``.

Unknown names raise ValueError listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sage_platform.evaluation import retrieval_metrics as rm
from sage_platform.evaluation import text_metrics as tm
from sage_platform.evaluation.labels import accuracy

_ANSWER: dict[str, Callable[[Sequence[str], Sequence[Sequence[str]]], float]] = {
    "bleu": tm.corpus_bleu,
    "rouge1": lambda p, r: tm.rouge(p, r)["rouge1"],
    "rouge2": lambda p, r: tm.rouge(p, r)["rouge2"],
    "rougeL": lambda p, r: tm.rouge(p, r)["rougeL"],
    "exact_match": tm.exact_match,
    "f1": tm.token_f1,
}
_RANKING: dict[str, Callable[[Sequence[Sequence[str]], Sequence[Sequence[str]], int], float]] = {
    "recall": rm.recall_at_k,
    "mrr": rm.mrr_at_k,
    "ndcg": rm.ndcg_at_k,
    "hit_rate": rm.hit_rate_at_k,
}
METRIC_NAMES = (*_ANSWER, "accuracy", *(f"{name}@k" for name in _RANKING))


def compute(name: str, predictions: Sequence[Any], references: Sequence[Any]) -> float:
    """``name`` is an answer metric, ``accuracy``, or a ranking metric with its cut-off (``recall@5``)."""
    if name in _ANSWER:
        return _ANSWER[name](predictions, references)
    if name == "accuracy":
        return accuracy(predictions, references)
    base, sep, cutoff = name.partition("@")
    if sep and base in _RANKING and cutoff.isdigit() and int(cutoff) > 0:
        return _RANKING[base](predictions, references, int(cutoff))
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_NAMES)} (k a positive integer)")
