"""Evaluation: exact answer metrics, retrieval metrics, the golden set and the report."""

from sage_platform.evaluation.golden import (
    GoldenQuestion,
    GoldenSetError,
    load_golden_set,
    load_stored_questions,
    store_golden_set,
)
from sage_platform.evaluation.labels import accuracy, label_from_answer
from sage_platform.evaluation.registry import METRIC_NAMES, compute
from sage_platform.evaluation.report import HEADLINE_METRICS, EvaluationReport, read_report, store_report
from sage_platform.evaluation.retrieval_metrics import hit_rate_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from sage_platform.evaluation.text_metrics import corpus_bleu, exact_match, rouge, token_f1

__all__ = [
    "HEADLINE_METRICS",
    "METRIC_NAMES",
    "accuracy",
    "compute",
    "label_from_answer",
    "EvaluationReport",
    "GoldenQuestion",
    "GoldenSetError",
    "corpus_bleu",
    "exact_match",
    "hit_rate_at_k",
    "load_golden_set",
    "load_stored_questions",
    "mrr_at_k",
    "ndcg_at_k",
    "read_report",
    "recall_at_k",
    "rouge",
    "store_golden_set",
    "store_report",
    "token_f1",
]
