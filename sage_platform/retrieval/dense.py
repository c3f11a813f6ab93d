"""Dense retrieval: pgvector HNSW, cosine, with filters applied in SQL. A binary-quantized index (large
versions) is searched in two stages: Hamming candidates, re-ranked by cosine (``index.vector_kinds``).

Pooled connections run with ``hnsw.iterative_scan = strict_order``: when a filter rejects most
neighbours the scan goes on until k rows pass, instead of returning fewer.

Usage::

    retriever = DenseRetriever(db, embedder, ef_search=100)
    hits = retriever.search("How do I back up Sage?", k=5, filters={"source": "operations.md"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from psycopg import sql

from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.index import LIVE_VIEW
from sage_platform.retrieval._parallel import each_in_parallel
from sage_platform.retrieval._sql import (
    HIT_METADATA,
    LiveConfigs,
    filter_clause,
    query_params,
    searchable_sql,
    to_hits,
    use_ef_search,
)
from sage_platform.retrieval.types import Hit
from sage_platform.text_search import DEFAULT_CONFIG, has_search_terms


class DenseRetriever:
    name = "dense"

    def __init__(
        self, db: Database, embedder: Embedder, *, ef_search: int = 100, default_config: str = DEFAULT_CONFIG
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.ef_search = ef_search
        self.default_config = default_config
        self._live = LiveConfigs()

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        filter_clause(filters)  # a bad filter is an error even for an empty query
        if not has_search_terms(query):
            return []
        return self.search_vector(self.embedder.embed([query])[0], k, filters, query=query)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        vectors = self.embedder.embed(list(queries))
        return each_in_parallel(
            lambda pair: self.search_vector(pair[1], k, query=pair[0]) if has_search_terms(pair[0]) else [],
            list(zip(queries, vectors, strict=True)),
        )

    def search_vector(
        self, vector: np.ndarray, k: int = 10, filters: Mapping[str, str] | None = None, *, query: str | None = None
    ) -> list[Hit]:
        """Nearest chunks to a vector. With ``query``, a query of only stop words returns nothing."""
        where, params = filter_clause(filters)
        with self.db.search_pool.connection() as conn:
            if query is not None:
                where = sql.SQL("{} AND {}").format(where, searchable_sql())
                params.update(query_params(query, self.default_config))
            self._live.get(conn)
            index = self._live.vector_index
            statement = sql.SQL(
                """SELECT chunk_id, doc_id, 1 - (embedding <=> %(vector)s) AS score, text, {metadata}
                   FROM ({nearest}) nearest ORDER BY embedding <=> %(vector)s"""
            ).format(metadata=HIT_METADATA, nearest=index.nearest_sql(sql.Identifier(LIVE_VIEW), where))
            use_ef_search(conn, index.ef_search(self.ef_search, k))
            values = {**params, "vector": np.asarray(vector, dtype=np.float32), **index.params(k)}
            rows = conn.execute(statement, values).fetchall()
        return to_hits(rows)
