"""Retrievers: one ``search(query, k, filters)`` interface over the platform's indexes."""

from sage_platform.retrieval.dense import DenseRetriever
from sage_platform.retrieval.types import Hit, Retriever, ranked_doc_ids

__all__ = ["DenseRetriever", "Hit", "Retriever", "ranked_doc_ids"]
