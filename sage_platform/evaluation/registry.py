"""Every metric by name, for reports and scripts: ``compute("rougeL", predictions, references)``.

Unknown names raise ValueError listing the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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
# Measurements of the run itself: the values come as ``predictions``, with no references.
_MEASURED: dict[str, Callable[[Sequence[float]], float]] = {
    "latency_p50": lambda v: float(np.percentile(v, 50)),
    "latency_p95": lambda v: float(np.percentile(v, 95)),
    "latency_p99": lambda v: float(np.percentile(v, 99)),
    "latency_mean": lambda v: float(np.mean(v)),
    "prompt_tokens": lambda v: float(np.mean(v)),
    "completion_tokens": lambda v: float(np.mean(v)),
}
METRIC_NAMES = (*_ANSWER, "accuracy", *(f"{name}@k" for name in _RANKING), *_MEASURED, "compression_ratio")


def compute(name: str, predictions: Sequence[Any], references: Sequence[Any] | None = None) -> float:
    """``name`` is an answer metric, ``accuracy``, a ranking metric with its cut-off (``recall@5``), a
    measurement (``latency_p50`` of milliseconds, ``prompt_tokens``: the mean of the values given), or
    ``compression_ratio`` (predictions: retrieved context tokens; references: tokens given to the generator)."""
    if name in _MEASURED:
        if not predictions:
            raise ValueError(f"{name}: no values")
        return _MEASURED[name]([float(v) for v in predictions])
    if name == "compression_ratio":
        used = sum(float(v) for v in references or ())
        if len(predictions) != len(references or ()) or used <= 0:
            raise ValueError("compression_ratio needs as many used-token counts as retrieved ones, not all zero")
        return sum(float(v) for v in predictions) / used
    if references is None:
        raise ValueError(f"{name} needs references")
    if name in _ANSWER:
        return _ANSWER[name](predictions, references)
    if name == "accuracy":
        return accuracy(predictions, references)
    base, sep, cutoff = name.partition("@")
    if sep and base in _RANKING and cutoff.isdigit() and int(cutoff) > 0:
        return _RANKING[base](predictions, references, int(cutoff))
    raise ValueError(f"unknown metric {name!r}; valid: {', '.join(METRIC_NAMES)} (k a positive integer)")
