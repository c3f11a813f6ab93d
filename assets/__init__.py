"""The asset graph: corpus → documents → chunks → embeddings → index → answers → evaluation."""

from typing import Any

from sage_platform.assets._step_values import STEP_VALUES, step_values_io_manager
from sage_platform.assets.embedding import chunk_embeddings
from sage_platform.assets.evaluation import eval_questions, evaluation_report, rag_answers
from sage_platform.assets.indexing import es_index, pgvector_index
from sage_platform.assets.ingestion import document_chunks, raw_documents
from sage_platform.resources import SageResource

RAG_GROUP = "rag"


def rag_resources(sage: SageResource | None = None) -> dict[str, Any]:
    """What the graph's steps need: the ``sage`` resource, and the database-backed IO manager that carries
    the embedding fan-out's plan between steps (in whatever process or container each runs)."""
    return {"sage": sage or SageResource(), STEP_VALUES: step_values_io_manager}


rag_assets = [
    raw_documents,
    document_chunks,
    chunk_embeddings,
    pgvector_index,
    es_index,
    eval_questions,
    rag_answers,
    evaluation_report,
]

__all__ = ["RAG_GROUP", "rag_assets", "rag_resources"]
