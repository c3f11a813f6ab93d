"""Retrievers: one ``search(query, k, filters) -> list[Hit]`` interface over the platform's indexes.

- ``dense``: pgvector HNSW (cosine), filters in SQL with iterative scans;
- ``sparse``: PostgreSQL full text, per-language configurations, CJK bigrams;
- ``hybrid``: Reciprocal Rank Fusion of both, with an optional reranker over every candidate;
- ``elasticsearch``: BM25, knn or the rrf retriever on the ``sage-chunks`` alias.
"""

from sage_platform.filters import FILTER_COLUMNS, RETRIEVERS, check_retriever_name, parse_filter_args
from sage_platform.retrieval.dense import DenseRetriever
from sage_platform.retrieval.elasticsearch import ElasticsearchRetriever
from sage_platform.retrieval.hybrid import HybridRetriever
from sage_platform.retrieval.sparse import SparseRetriever
from sage_platform.retrieval.types import Hit, Reranker, Retriever, ranked_doc_ids

__all__ = [
    "FILTER_COLUMNS",
    "RETRIEVERS",
    "DenseRetriever",
    "ElasticsearchRetriever",
    "Hit",
    "HybridRetriever",
    "Reranker",
    "Retriever",
    "SparseRetriever",
    "check_retriever_name",
    "parse_filter_args",
    "ranked_doc_ids",
]
