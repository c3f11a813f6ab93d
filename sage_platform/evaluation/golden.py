"""The golden question set: JSONL, one object per line, FlashRAG field names plus relevant ids.

``{"id": "q1", "question": "…", "golden_answers": ["…"], "relevant_doc_ids": ["a.md"]}``
with optional ``label`` (e.g. PubMedQA's yes/no/maybe) and ``metadata``.

Usage::

    questions = load_golden_set(Path("eval/sage_docs.jsonl"))   # ValueError names every bad line
    store_golden_set(db, questions)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from sage_platform.db import Database


@dataclass(frozen=True)
class GoldenQuestion:
    id: str
    question: str
    golden_answers: list[str]
    relevant_doc_ids: list[str]
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class GoldenSetError(ValueError):
    """Lists every problem of a golden set, each with its line number."""


def _string_list(record: dict[str, Any], key: str, problems: list[str], *, required: bool) -> list[str]:
    value = record.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"'{key}' must be a list of strings")
        return []
    if required and not value:
        problems.append(f"'{key}' must not be empty")
    return value


def parse_question(record: Any) -> tuple[GoldenQuestion | None, list[str]]:
    if not isinstance(record, dict):
        return None, ["a line must hold a JSON object"]
    problems: list[str] = []
    qid = record.get("id")
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    if not isinstance(qid, str) or not qid.strip():
        problems.append("'id' must be a non-empty string")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        problems.append("'question' must be a non-empty string")
    answers = _string_list(record, "golden_answers", problems, required=True)
    relevant = _string_list(record, "relevant_doc_ids", problems, required=False)
    label, metadata = record.get("label"), record.get("metadata", {})
    if label is not None and not isinstance(label, str):
        problems.append("'label' must be a string")
    if not isinstance(metadata, dict):
        problems.append("'metadata' must be an object")
    if problems:
        return None, problems
    return GoldenQuestion(str(qid).strip(), str(question).strip(), answers, relevant, label, metadata), []


def load_golden_set(path: Path) -> list[GoldenQuestion]:
    if not path.is_file():
        raise GoldenSetError(f"golden set {path} does not exist (set SAGE_EVAL_SET)")
    problems: list[str] = []
    questions: list[GoldenQuestion] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: invalid JSON ({error.msg} at column {error.colno})")
            continue
        question, issues = parse_question(record)
        problems.extend(f"line {number}: {issue}" for issue in issues)
        if question is None:
            continue
        if question.id in first_line:
            problems.append(f"line {number}: duplicate id {question.id!r} (first on line {first_line[question.id]})")
            continue
        first_line[question.id] = number
        questions.append(question)
    if problems:
        raise GoldenSetError(f"golden set {path} has {len(problems)} problem(s): " + "; ".join(problems))
    if not questions:
        raise GoldenSetError(f"golden set {path} holds no questions")
    return questions


def store_golden_set(db: Database, questions: list[GoldenQuestion]) -> None:
    """Replace the stored set in one transaction; answers of removed questions go with them."""
    with db.connect() as conn:
        conn.execute("DELETE FROM eval_questions WHERE NOT (question_id = ANY(%s))", ([q.id for q in questions],))
        for position, q in enumerate(questions):
            conn.execute(
                """INSERT INTO eval_questions
                       (question_id, position, question, golden_answers, relevant_doc_ids, label, metadata)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (question_id) DO UPDATE SET position = excluded.position,
                       question = excluded.question, golden_answers = excluded.golden_answers,
                       relevant_doc_ids = excluded.relevant_doc_ids, label = excluded.label,
                       metadata = excluded.metadata""",
                (q.id, position, q.question, Jsonb(q.golden_answers), Jsonb(q.relevant_doc_ids), q.label,
                 Jsonb(q.metadata)),
            )  # fmt: skip


def load_stored_questions(db: Database) -> list[GoldenQuestion]:
    with db.connect() as conn:
        rows = conn.execute(
            """SELECT question_id, question, golden_answers, relevant_doc_ids, label, metadata
               FROM eval_questions ORDER BY position"""
        ).fetchall()
    return [GoldenQuestion(*row) for row in rows]
