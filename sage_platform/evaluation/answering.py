"""Answer every stored golden question: retrieve, then generate, then store in ``rag_answers``.

Usage::

    stats = answer_questions(db, retriever, answerer, answer_k=5, ranking_depth=10)
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb

from sage_platform.db import Database
from sage_platform.evaluation.golden import load_stored_questions
from sage_platform.generation import Answerer
from sage_platform.retrieval.types import Retriever, ranked_doc_ids

CHUNKS_PER_DOC_RANK = 3  # fetch this many chunks per wanted document rank, so the doc ranking fills


@dataclass
class AnswerStats:
    questions: int
    answerer: str
    preview: list[tuple[str, str, list[str]]]


def answer_questions(
    db: Database, retriever: Retriever, answerer: Answerer, *, answer_k: int, ranking_depth: int = 10
) -> AnswerStats:
    questions = load_stored_questions(db)
    depth = max(answer_k, ranking_depth * CHUNKS_PER_DOC_RANK)
    hits = retriever.search_many([q.question for q in questions], k=depth)
    answers = answerer.answer_many([q.question for q in questions], [h[:answer_k] for h in hits])
    preview = []
    with db.connect() as conn:
        conn.execute("DELETE FROM rag_answers")
        for question, question_hits, answer in zip(questions, hits, answers, strict=True):
            doc_ids = ranked_doc_ids(question_hits, ranking_depth)
            conn.execute(
                """INSERT INTO rag_answers (question_id, answer, answerer, retrieved_chunk_ids, retrieved_doc_ids)
                   VALUES (%s, %s, %s, %s, %s)""",
                (question.id, answer, answerer.label, Jsonb([h.chunk_id for h in question_hits[:answer_k]]),
                 Jsonb(doc_ids)),
            )  # fmt: skip
            preview.append((question.question, answer, doc_ids))
    return AnswerStats(len(questions), answerer.label, preview)
