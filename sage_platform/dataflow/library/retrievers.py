"""Retrievers over the platform's indexes: dense (pgvector), sparse (full text), hybrid, Elasticsearch.

Each adds ``retrieved`` (hits as dicts: chunk_id, doc_id, score, text, metadata) and ``context``
(their texts) to a record with a ``query``. Config: ``top_k`` (default ``SAGE_RETRIEVAL_K``),
``filters`` (metadata filters, as ``sage search --filter``), ``model`` (the embedding model; the
original's ``sentence-transformers/…`` names map to the packaged model), ``settings`` (platform settings).

Usage::

    .map(DenseRetriever, {"model": "sentence-transformers/all-MiniLM-L6-v2", "top_k": 5})
    .map(HybridRetriever, {"top_k": 30}, batch_size=64)
"""

from __future__ import annotations

from typing import Any, ClassVar

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import hit_record, platform_for
from sage_platform.retrieval.types import Hit


class _PlatformRetriever(MapFunction):
    requires = frozenset({"query"})
    provides = frozenset({"retrieved", "context"})
    batch_size = 16  # one embedding call per batch of queries
    retriever_name: ClassVar[str]

    def open(self) -> None:
        platform = platform_for(self.config)
        # A pipeline runs one user's queries: the evaluation's golden questions, asked on every run.
        self._retriever = platform.retriever_named(self.retriever_name, remember_queries=True)
        self._k = int(self.config.get("top_k", self.config.get("k", platform.settings.retrieval_k)))
        self._filters: dict[str, str] | None = self.config.get("filters")

    def execute_batch(self, records: list[Any]) -> list[Any]:
        queries = [str(record["query"]) for record in records]
        if self._filters:
            hits = [self._retriever.search(q, self._k, self._filters) for q in queries]
        else:
            hits = self._retriever.search_many(queries, k=self._k)
        return [_with_hits(record, found) for record, found in zip(records, hits, strict=True)]


def _with_hits(record: dict[str, Any], hits: list[Hit]) -> dict[str, Any]:
    return {**record, "retrieved": [hit_record(h) for h in hits], "context": [h.text for h in hits]}


class DenseRetriever(_PlatformRetriever):
    """pgvector HNSW, cosine."""

    retriever_name = "dense"


class SparseRetriever(_PlatformRetriever):
    """PostgreSQL full text (BM25-style ranking), per-language configurations."""

    retriever_name = "sparse"


class HybridRetriever(_PlatformRetriever):
    """Dense and sparse fused (``SAGE_HYBRID_FUSION``): the platform's default retriever."""

    retriever_name = "hybrid"


class ElasticsearchRetriever(_PlatformRetriever):
    """The ``sage-chunks`` alias on ``SAGE_ELASTICSEARCH_URL`` (BM25, knn or rrf per settings)."""

    retriever_name = "elasticsearch"
