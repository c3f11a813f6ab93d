"""Dense retrieval over the pgvector HNSW index (cosine).

Usage::

    retriever = DenseRetriever(db, embedder, ef_search=100)
    hits = retriever.search("How do I back up Sage?", k=5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import psycopg

from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.index.pgvector import INDEX_TABLE
from sage_platform.retrieval.types import Hit

_QUERY = f"""
    SELECT chunk_id, doc_id, 1 - (embedding <=> %(q)s) AS score, text,
           jsonb_build_object('title', title, 'source', source, 'position', position) || metadata
    FROM {INDEX_TABLE}
    ORDER BY embedding <=> %(q)s
    LIMIT %(k)s
"""  # noqa: S608 - a constant table name, values are parameters


class DenseRetriever:
    name = "dense"

    def __init__(self, db: Database, embedder: Embedder, *, ef_search: int = 100) -> None:
        self.db = db
        self.embedder = embedder
        self.ef_search = ef_search

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        if filters:
            raise ValueError("the dense retriever takes no filters yet")
        if not query.strip():
            return []
        return self.search_vectors(self.embedder.embed([query]), k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return self.search_vectors(self.embedder.embed(list(queries)), k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        with self.db.connect() as conn:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(max(self.ef_search, k)),))
            return [self._one(conn, vector, k) for vector in vectors]

    @staticmethod
    def _one(conn: psycopg.Connection, vector: np.ndarray, k: int) -> list[Hit]:
        rows = conn.execute(_QUERY, {"q": np.asarray(vector, dtype=np.float32), "k": k}).fetchall()
        return [Hit(chunk_id, doc_id, float(score), text, metadata) for chunk_id, doc_id, score, text, metadata in rows]
