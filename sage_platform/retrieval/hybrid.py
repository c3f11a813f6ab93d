"""Hybrid retrieval: dense and full-text candidates fused in one SQL round trip.

Each side contributes its own candidate depth (larger than k), and every candidate gets both
scores: its cosine similarity to the query and its BM25 score (zero when it holds none of the
query's rarer words). Two fusions:

- ``convex`` (the default): ``w * similarity + (1 - w) * bm25 / max bm25`` over the candidates, the
  convex combination with a theoretical bound for the cosine side (Bruch et al., 2023). Where the
  embedding model cannot tell candidates apart (their similarities are close), BM25 decides, and
  the other way round; rank fusion cannot see that.
- ``rrf``: Reciprocal Rank Fusion (rank constant 60) of the two rankings.

An optional reranker sees every fused candidate, not only the final k.

Usage::

    retriever = HybridRetriever(db, embedder, dense_depth=50, sparse_depth=50, fusion="convex", dense_weight=0.5)
    hits = retriever.search("content-defined chunking", k=10, filters={"metadata.lang": "en"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from psycopg import sql

from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.index import LIVE_VIEW
from sage_platform.retrieval._parallel import each_in_parallel
from sage_platform.retrieval._sql import HIT_METADATA, LiveConfigs, filter_clause, to_hits, use_ef_search
from sage_platform.retrieval.sparse import sparse_candidates_sql, sparse_params
from sage_platform.retrieval.types import Hit, Reranker
from sage_platform.text_search import DEFAULT_CONFIG, has_search_terms

RRF_K = 60
FUSIONS = ("convex", "rrf")


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
        fusion: str = "convex",
        dense_weight: float = 0.5,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, not {dense_weight}")
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.default_config = default_config
        self.db = db
        self.embedder = embedder
        self.dense_depth = dense_depth
        self.sparse_depth = sparse_depth
        self.max_candidates = max_candidates
        self.ef_search = ef_search
        self.reranker = reranker
        self._configs = LiveConfigs()

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        filter_clause(filters)  # a bad filter is an error even for an empty query
        if not has_search_terms(query):
            return []
        return self.search_with_vector(query, self.embedder.embed([query])[0], k, filters)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        vectors = self.embedder.embed(list(queries))
        return each_in_parallel(
            lambda pair: self.search_with_vector(pair[0], pair[1], k) if has_search_terms(pair[0]) else [],
            list(zip(queries, vectors, strict=True)),
        )

    def search_with_vector(
        self, query: str, vector: np.ndarray, k: int = 10, filters: Mapping[str, str] | None = None
    ) -> list[Hit]:
        where, params = filter_clause(filters)
        limit = self.dense_depth + self.sparse_depth if self.reranker else k
        with self.db.search_pool.connection() as conn:
            configs = self._configs.get(conn)
            index = self._configs.vector_index
            use_ef_search(conn, index.ef_search(self.ef_search, self.dense_depth))
            statement = sql.SQL(
                """WITH {sparse_candidates},
                   dense AS MATERIALIZED (
                       SELECT chunk_id, distance, row_number() OVER (ORDER BY distance) AS rank FROM (
                           SELECT chunk_id, embedding <=> %(vector)s AS distance FROM ({nearest}) n) nearest),
                   pool AS (
                       SELECT chunk_id FROM dense UNION SELECT chunk_id FROM sparse WHERE rank <= %(sparse_depth)s),
                   both_sides AS (
                       SELECT p.chunk_id, d.rank AS dense_rank,
                              CASE WHEN s.rank <= %(sparse_depth)s THEN s.rank END AS sparse_rank,
                              1 - coalesce(d.distance, c.embedding <=> %(vector)s) AS similarity,
                              coalesce(s.score, 0) AS bm25
                       FROM pool p JOIN {view} c USING (chunk_id)
                       LEFT JOIN dense d USING (chunk_id) LEFT JOIN sparse s USING (chunk_id)),
                   fused AS (
                       SELECT chunk_id, CASE WHEN %(fusion)s = 'rrf'
                           THEN coalesce(1.0 / (%(rrf_k)s + dense_rank), 0) + coalesce(1.0 / (%(rrf_k)s + sparse_rank), 0)
                           ELSE %(dense_weight)s * similarity
                                + (1 - %(dense_weight)s) * coalesce(bm25 / nullif(max(bm25) OVER (), 0), 0)
                           END AS score
                       FROM both_sides ORDER BY score DESC, chunk_id LIMIT %(limit)s)
                   SELECT f.chunk_id, c.doc_id, f.score, c.text, {metadata}
                   FROM fused f JOIN {view} c USING (chunk_id) ORDER BY f.score DESC, f.chunk_id"""
            ).format(
                sparse_candidates=sparse_candidates_sql(configs, where),
                nearest=index.nearest_sql(
                    sql.Identifier(LIVE_VIEW), sql.SQL("{} AND (SELECT searchable FROM q)").format(where)
                ),
                view=sql.Identifier(LIVE_VIEW),
                where=where,
                metadata=HIT_METADATA,
            )
            values = {
                **params,
                **sparse_params(self._configs, query, self.default_config, max(self.max_candidates, self.sparse_depth)),
                "vector": np.asarray(vector, dtype=np.float32),
                **index.params(self.dense_depth),
                "sparse_depth": self.sparse_depth,
                "rrf_k": RRF_K,
                "fusion": self.fusion,
                "dense_weight": self.dense_weight,
                "limit": limit,
            }
            hits = to_hits(conn.execute(statement, values).fetchall())
        if self.reranker:
            hits = self.reranker.rerank(query, hits)
        return hits[:k]
