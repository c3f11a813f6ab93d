"""The ``evaluation_report`` asset's pipeline: every stored answer scored by the library's evaluators.

``TableSource`` (answers joined with their golden questions) → BLEU, ROUGE, exact match, F1, recall@1/5/10,
MRR@10, nDCG@10, hit rate@5, label accuracy, latency, tokens, context compression → the run's figures
(each evaluator's) and each answer's scores, recorded by ``evaluation.store_report``.

Usage::

    report = evaluate(platform, reports_dir=Path(".sage/reports"), settings={"retriever": "hybrid"})
    report.scores["recall@5"], report.scores["latency_p50"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.library import (
    BLEU,
    F1,
    MRR,
    NDCG,
    ROUGE,
    Accuracy,
    ContextCompression,
    ExactMatch,
    HitRate,
    Latency,
    Recall,
    TableSource,
    TokenCount,
)
from sage_platform.dataflow.local import LocalEnvironment
from sage_platform.dataflow.pipeline import DataStream
from sage_platform.evaluation.report import RANKING_DEPTH, EvaluationReport, store_report
from sage_platform.platform import Platform

ANSWERED = """SELECT q.question_id, q.question, q.golden_answers AS "references", q.relevant_doc_ids, a.answer,
                     a.retrieved_doc_ids, a.answerer, q.label, a.latency_ms, a.prompt_tokens, a.completion_tokens,
                     a.retrieved_tokens, a.context_tokens
              FROM eval_questions q JOIN rag_answers a USING (question_id) ORDER BY q.position"""
EVALUATORS: list[tuple[Any, dict[str, Any]]] = [
    (BLEU, {}), (ROUGE, {}), (ExactMatch, {}), (F1, {}), (Recall, {"k": 1}), (Recall, {"k": 5}),
    (Recall, {"k": RANKING_DEPTH}), (MRR, {"k": RANKING_DEPTH}), (NDCG, {"k": RANKING_DEPTH}), (HitRate, {"k": 5}),
    (Accuracy, {}), (Latency, {}), (TokenCount, {}), (ContextCompression, {}),
]  # fmt: skip
ITEM_SCORES = ("exact_match", "f1", "rouge1", "rouge2", "rougeL", "recall@1", "recall@5", "recall@10", "mrr@10")


def with_usage(record: dict[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": record["prompt_tokens"], "completion_tokens": record["completion_tokens"]}
    return {**record, "usage": usage if record["prompt_tokens"] is not None else None}


def build_evaluation(env: BaseEnvironment, *, platform: Platform | None = None) -> DataStream:
    shared: dict[str, Any] = {"platform": platform} if platform is not None else {}
    stream = env.from_source(TableSource, {**shared, "query": ANSWERED}).map(with_usage)
    for evaluator, config in EVALUATORS:
        stream = stream.map(evaluator, config)
    return stream


def evaluate(platform: Platform, *, reports_dir: Path, settings: dict[str, Any]) -> EvaluationReport:
    env = LocalEnvironment("evaluation_report")
    build_evaluation(env, platform=platform)
    result = env.submit()
    if not result.outputs:
        raise ValueError("no answered questions: materialize eval_questions and rag_answers first")
    scores = {name: float(value) for summary in result.summary.values() for name, value in summary.items()}
    items = [
        {"question_id": r["question_id"], "question": r["question"], "gold": r["references"][0],
         "prediction": r["answer"], "retrieved_doc_ids": r["retrieved_doc_ids"],
         "relevant_doc_ids": r["relevant_doc_ids"], **{name: float(r["scores"][name]) for name in ITEM_SCORES}}
        for r in result.outputs
    ]  # fmt: skip
    return store_report(platform.db, reports_dir=reports_dir, settings=settings, scores=scores, items=items,
                        answerer=result.outputs[0]["answerer"])  # fmt: skip
