"""The evaluation report's record: ``eval_runs``/``eval_items`` and ``<reports>/evaluation.json``
with flat top-level keys (``bleu, rouge1, rouge2, rougeL, exact_match, f1, recall@1, recall@5,
recall@10, mrr@10`` and more) plus the run's settings. The scores come from the evaluation dataflow
(``sage_platform.dataflow.evaluation_report``).

Usage::

    report = store_report(db, reports_dir=Path(".sage/reports"), settings={"retriever": "dense"},
                          scores=scores, items=items, answerer="extractive")
    read_report(Path(".sage/reports"))["recall@5"]
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


def store_report(
    db: Database, *, reports_dir: Path, settings: dict[str, Any], scores: dict[str, float],
    items: list[dict[str, Any]], answerer: str,
) -> EvaluationReport:  # fmt: skip
    """Record a scored run: ``eval_runs``, one ``eval_items`` row per question, and the JSON report."""
    run_id = uuid.uuid4().hex
    created = datetime.now(UTC).isoformat()
    run_settings = {**settings, "answerer": answerer, "questions": len(items), "ranking_depth": RANKING_DEPTH}
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
    return EvaluationReport(run_id, scores, items, path, answerer)


def read_report(reports_dir: Path) -> dict[str, Any] | None:
    path = reports_dir / "evaluation.json"
    return json.loads(path.read_text()) if path.exists() else None
