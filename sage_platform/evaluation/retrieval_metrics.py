"""Retrieval metrics over ranked document ids and the relevant ids of each question (0–1).

Usage::

    recall_at_k([["a", "b"]], [["b"]], k=1)   # 0.0
    mrr_at_k([["a", "b"]], [["b"]], k=10)     # 0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _check(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> None:
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings but {len(relevant)} relevant-id lists")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def recall_at_k_per_query(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> list[float]:
    _check(ranked, relevant, k)
    return [len(set(r[:k]) & set(g)) / len(set(g)) if g else 0.0 for r, g in zip(ranked, relevant, strict=True)]


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> float:
    return _mean(recall_at_k_per_query(ranked, relevant, k))


def hit_rate_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> float:
    _check(ranked, relevant, k)
    return _mean([float(bool(set(r[:k]) & set(g))) for r, g in zip(ranked, relevant, strict=True)])


def mrr_at_k_per_query(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> list[float]:
    _check(ranked, relevant, k)
    out = []
    for r, g in zip(ranked, relevant, strict=True):
        gold = set(g)
        out.append(next((1.0 / rank for rank, doc in enumerate(r[:k], start=1) if doc in gold), 0.0))
    return out


def mrr_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> float:
    return _mean(mrr_at_k_per_query(ranked, relevant, k))


def ndcg_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Sequence[str]], k: int) -> float:
    """Binary-relevance nDCG@k."""
    _check(ranked, relevant, k)
    scores = []
    for r, g in zip(ranked, relevant, strict=True):
        gold = set(g)
        dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(r[:k], start=1) if doc in gold)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
        scores.append(dcg / ideal if ideal else 0.0)
    return _mean(scores)
