"""The asset graph: corpus → documents → chunks → embeddings → index → answers → evaluation."""

from sage_platform.assets.evaluation import eval_questions, evaluation_report, rag_answers
from sage_platform.assets.indexing import chunk_embeddings, es_index, pgvector_index
from sage_platform.assets.ingestion import document_chunks, raw_documents

RAG_GROUP = "rag"

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

__all__ = ["RAG_GROUP", "rag_assets"]
