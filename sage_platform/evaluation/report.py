"""The evaluation report: answer quality and retrieval quality over the stored answers.

Writes ``eval_runs``/``eval_items`` and ``<reports>/evaluation.json`` with flat top-level keys
``bleu, rouge1, rouge2, rougeL, exact_match, f1, recall@1, recall@5, recall@10, mrr@10`` plus
the run's settings.

Usage::

    report = evaluate(db, reports_dir=Path(".sage/reports"), settings={"retriever": "dense"})
    report.scores["recall@5"]
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from sage_platform.db import Database
from sage_platform.evaluation import retrieval_metrics as rm
from sage_platform.evaluation import text_metrics as tm
from sage_platform.evaluation.labels import accuracy, label_from_answer
from sage_platform.evaluation.registry import compute

HEADLINE_METRICS = ("bleu", "rouge1", "rouge2", "rougeL", "exact_match", "f1",
                    "recall@1", "recall@5", "recall@10", "mrr@10")  # fmt: skip
RANKING_DEPTH = 10


@dataclass
class EvaluationReport:
    run_id: str
    scores: dict[str, float]
    items: list[dict[str, Any]]
    path: Path
    answerer: str

    def worst(self, n: int = 10) -> list[dict[str, Any]]:
        return sorted(self.items, key=lambda item: (item["f1"], item["recall@10"]))[:n]


def evaluate(db: Database, *, reports_dir: Path, settings: dict[str, Any]) -> EvaluationReport:
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT q.question_id, q.question, q.golden_answers, q.relevant_doc_ids, a.answer,
                      a.retrieved_doc_ids, a.answerer, q.label, a.latency_ms, a.prompt_tokens,
                      a.completion_tokens, a.retrieved_tokens, a.context_tokens
               FROM eval_questions q JOIN rag_answers a USING (question_id) ORDER BY q.position"""
        ).fetchall()
    if not rows:
        raise ValueError("no answered questions: materialize eval_questions and rag_answers first")
    columns = [list(c) for c in zip(*rows, strict=True)]
    ids, questions, golds, relevant, predictions, ranked, answerers, labels = columns[:8]
    rouge_items = tm.rouge_per_sample(predictions, golds)
    em_items = tm.exact_match_per_sample(predictions, golds)
    f1_items = tm.token_f1_per_sample(predictions, golds)
    recall_items = {k: rm.recall_at_k_per_query(ranked, relevant, k) for k in (1, 5, 10)}
    mrr_items = rm.mrr_at_k_per_query(ranked, relevant, RANKING_DEPTH)

    scores = {
        "bleu": tm.corpus_bleu(predictions, golds),
        **tm.rouge(predictions, golds),
        "exact_match": sum(em_items) / len(em_items),
        "f1": sum(f1_items) / len(f1_items),
        **{f"recall@{k}": sum(v) / len(v) for k, v in recall_items.items()},
        "mrr@10": sum(mrr_items) / len(mrr_items),
        "ndcg@10": rm.ndcg_at_k(ranked, relevant, RANKING_DEPTH),
        "hit_rate@5": rm.hit_rate_at_k(ranked, relevant, 5),
    }
    scores.update(_costs(*columns[8:]))
    labelled = [(label_from_answer(p), g) for p, g in zip(predictions, labels, strict=True) if g]
    if labelled:  # label answers, such as PubMedQA's yes/no/maybe
        scores["accuracy"] = accuracy([p for p, _ in labelled], [g for _, g in labelled])
        scores["label_coverage"] = sum(1 for p, _ in labelled if p) / len(labelled)
    items = [
        {"question_id": ids[i], "question": questions[i], "gold": golds[i][0], "prediction": predictions[i],
         "retrieved_doc_ids": ranked[i], "relevant_doc_ids": relevant[i], "exact_match": em_items[i],
         "f1": f1_items[i], **rouge_items[i], **{f"recall@{k}": recall_items[k][i] for k in recall_items},
         "mrr@10": mrr_items[i]}
        for i in range(len(rows))
    ]  # fmt: skip
    run_id = uuid.uuid4().hex
    created = datetime.now(UTC).isoformat()
    run_settings = {
        **settings,
        "answerer": answerers[0],
        "questions": len(rows),
        "ranking_depth": RANKING_DEPTH,
    }
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO eval_runs (run_id, settings, scores) VALUES (%s, %s, %s)",
            (run_id, Jsonb(run_settings), Jsonb(scores)),
        )
        with conn.cursor().copy("COPY eval_items (run_id, question_id, prediction, scores) FROM STDIN") as copy:
            for item in items:
                numbers = {k: v for k, v in item.items() if isinstance(v, float)}
                copy.write_row((run_id, item["question_id"], item["prediction"], json.dumps(numbers)))
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "evaluation.json"
    document = {**scores, "run_id": run_id, "created_at": created, "settings": run_settings}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    tmp.replace(path)  # readers never see a half-written report
    return EvaluationReport(run_id, scores, items, path, answerers[0])


def _costs(latency: list[Any], prompt: list[Any], completion: list[Any], retrieved: list[Any],
           given: list[Any]) -> dict[str, float]:  # fmt: skip
    """Latency, tokens and context compression over the answers that recorded them (older ones did not)."""
    out = {}
    for name, values in (("latency_p50", latency), ("latency_p99", latency), ("prompt_tokens", prompt),
                         ("completion_tokens", completion)):  # fmt: skip
        known = [v for v in values if v is not None]
        if known:
            out[name] = compute(name, known)
    pairs = [(r, g) for r, g in zip(retrieved, given, strict=True) if r is not None and g]
    if pairs:
        out["compression_ratio"] = compute("compression_ratio", [r for r, _ in pairs], [g for _, g in pairs])
    return out


def read_report(reports_dir: Path) -> dict[str, Any] | None:
    path = reports_dir / "evaluation.json"
    return json.loads(path.read_text()) if path.exists() else None
