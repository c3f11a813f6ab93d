"""Hybrid retrieval: Reciprocal Rank Fusion (k=60) of dense and full-text candidates, in one SQL
round trip. Each side contributes its own candidate depth (larger than k); an optional reranker
sees every fused candidate, not only the final k.

Usage::

    retriever = HybridRetriever(db, embedder, dense_depth=50, sparse_depth=50)
    hits = retriever.search("content-defined chunking", k=10, filters={"metadata.lang": "en"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from psycopg import sql

from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.index import LIVE_VIEW
from sage_platform.retrieval._sql import HIT_METADATA, LiveConfigs, filter_clause, query_params, to_hits, use_ef_search
from sage_platform.retrieval.sparse import sparse_candidates_sql
from sage_platform.retrieval.types import Hit, Reranker
from sage_platform.text_search import DEFAULT_CONFIG, has_search_terms

RRF_K = 60


class HybridRetriever:
    name = "hybrid"

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        *,
        dense_depth: int = 50,
        sparse_depth: int = 50,
        max_candidates: int = 200,
        ef_search: int = 100,
        reranker: Reranker | None = None,
        default_config: str = DEFAULT_CONFIG,
    ) -> None:
        self.default_config = default_config
        self.db = db
        self.embedder = embedder
        self.dense_depth = dense_depth
        self.sparse_depth = sparse_depth
        self.max_candidates = max_candidates
        self.ef_search = ef_search
        self.reranker = reranker
        self._configs = LiveConfigs(db)

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        filter_clause(filters)  # a bad filter is an error even for an empty query
        if not has_search_terms(query):
            return []
        return self.search_with_vector(query, self.embedder.embed([query])[0], k, filters)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        vectors = self.embedder.embed(list(queries))
        return [
            self.search_with_vector(q, v, k) if has_search_terms(q) else []
            for q, v in zip(queries, vectors, strict=True)
        ]

    def search_with_vector(
        self, query: str, vector: np.ndarray, k: int = 10, filters: Mapping[str, str] | None = None
    ) -> list[Hit]:
        where, params = filter_clause(filters)
        limit = self.dense_depth + self.sparse_depth if self.reranker else k
        with self.db.pool.connection() as conn:
            use_ef_search(conn, max(self.ef_search, self.dense_depth))
            statement = sql.SQL(
                """WITH {sparse_candidates},
                   dense AS MATERIALIZED (
                       SELECT chunk_id, row_number() OVER (ORDER BY distance) AS rank FROM (
                           SELECT chunk_id, embedding <=> %(vector)s AS distance FROM {view}
                           WHERE {where} AND (SELECT searchable FROM q)
                           ORDER BY embedding <=> %(vector)s LIMIT %(dense_depth)s) nearest),
                   fused AS (
                       SELECT chunk_id, sum(1.0 / (%(rrf_k)s + rank)) AS score FROM (
                           SELECT chunk_id, rank FROM dense
                           UNION ALL
                           SELECT chunk_id, rank FROM sparse WHERE rank <= %(sparse_depth)s) ranked
                       GROUP BY chunk_id ORDER BY score DESC, chunk_id LIMIT %(limit)s)
                   SELECT f.chunk_id, c.doc_id, f.score, c.text, {metadata}
                   FROM fused f JOIN {view} c USING (chunk_id) ORDER BY f.score DESC, f.chunk_id"""
            ).format(
                sparse_candidates=sparse_candidates_sql(self._configs.get(conn), where),
                view=sql.Identifier(LIVE_VIEW),
                where=where,
                metadata=HIT_METADATA,
            )
            values = {
                **params,
                **query_params(query, self.default_config),
                "common_lexemes": self._configs.common_lexemes,
                "k": k,  # any-term matches join only when fewer than k chunks hold every term
                "vector": np.asarray(vector, dtype=np.float32),
                "dense_depth": self.dense_depth,
                "sparse_depth": self.sparse_depth,
                "max_candidates": max(self.max_candidates, self.sparse_depth),
                "rrf_k": RRF_K,
                "limit": limit,
            }
            hits = to_hits(conn.execute(statement, values).fetchall())
        if self.reranker:
            hits = self.reranker.rerank(query, hits)
        return hits[:k]
