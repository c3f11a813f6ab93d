"""Elasticsearch retrieval through the ``sage-chunks`` alias: BM25, top-level ``knn``, or hybrid
with the ``rrf`` retriever.

Usage::

    retriever = ElasticsearchRetriever(es_client(settings), embedder, mode="hybrid")
    hits = retriever.search("content-defined chunking", k=10, filters={"source": "ingestion.md"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sage_platform.embeddings.base import Embedder
from sage_platform.index.es_bodies import ALIAS, bm25_body, filter_clauses, knn_body, rrf_body
from sage_platform.retrieval.types import Hit
from sage_platform.text_search import has_search_terms

MODES = ("bm25", "knn", "hybrid")


class ElasticsearchRetriever:
    name = "elasticsearch"

    def __init__(
        self,
        client: Any,
        embedder: Embedder,
        *,
        mode: str = "hybrid",
        depth: int = 50,
        num_candidates: int = 100,
        alias: str = ALIAS,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown Elasticsearch mode {mode!r}; valid: {', '.join(MODES)}")
        self.client = client
        self.embedder = embedder
        self.mode = mode
        self.depth = depth
        self.num_candidates = num_candidates
        self.alias = alias

    def body(self, query: str, k: int, filters: Mapping[str, str] | None = None) -> dict[str, Any]:
        if self.mode == "bm25":
            return bm25_body(query, k, filters)
        vector = self.embedder.embed([query])[0].tolist()
        if self.mode == "knn":
            return knn_body(vector, k, self.num_candidates, filters)
        return rrf_body(query, vector, k, depth=self.depth, num_candidates=self.num_candidates, filters=filters)

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        filter_clauses(filters)  # a bad filter is an error even for an empty query
        if not has_search_terms(query):
            return []
        response = self.client.search(index=self.alias, body=self.body(query, k, filters))
        return [_hit(h) for h in response["hits"]["hits"]]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]


def _hit(raw: dict[str, Any]) -> Hit:
    source = raw["_source"]
    metadata = {key: source.get(key) for key in ("title", "source", "position", "language")}
    metadata.update(source.get("metadata") or {})
    return Hit(source["chunk_id"], source["doc_id"], float(raw.get("_score") or 0.0), source["text"], metadata)
