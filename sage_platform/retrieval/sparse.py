"""Sparse retrieval: PostgreSQL full text (``tsvector`` + GIN, ``websearch_to_tsquery``).

Each chunk is indexed with its own language's configuration; CJK chunks as character bigrams
with ``simple``, so a Chinese query finds Chinese text. Chunks holding every query term rank
first; when fewer than k do, chunks holding any term follow. At most ``max_candidates`` matches
of each kind are ranked: ranking reads every matching row's tsvector, and a common word matches
thousands, which is where ranked full text gets its long tail.

Usage::

    retriever = SparseRetriever(db, max_candidates=200)
    hits = retriever.search("incremental ingestion", k=10)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql

from sage_platform.db import Database
from sage_platform.index import LIVE_VIEW
from sage_platform.retrieval._sql import (
    HIT_METADATA,
    LiveConfigs,
    any_term_tsquery_sql,
    filter_clause,
    query_params,
    searchable_sql,
    to_hits,
    tsquery_sql,
)
from sage_platform.retrieval.types import Hit
from sage_platform.text_search import DEFAULT_CONFIG, has_search_terms


def sparse_candidates_sql(configs: list[str], where: sql.Composable) -> sql.Composed:
    """CTEs ``q`` (the parsed query) and ``sparse`` (chunk_id, score, rank), within the candidate cap.

    Needs the parameters of ``query_params`` plus ``k`` and ``max_candidates``.
    """
    return sql.SQL(
        """q AS (SELECT {every} AS every_term, {any} AS any_term, {searchable} AS searchable),
           strict AS MATERIALIZED (
               SELECT ci.chunk_id, ci.tsv FROM {view} ci, q
               WHERE q.searchable AND ci.tsv @@ q.every_term AND {where}
               LIMIT %(max_candidates)s),
           loose AS MATERIALIZED (
               SELECT ci.chunk_id, ci.tsv FROM {view} ci, q
               WHERE q.searchable AND (SELECT count(*) FROM strict) < %(k)s AND ci.tsv @@ q.any_term
                 AND NOT (ci.tsv @@ q.every_term) AND {where}
               LIMIT %(max_candidates)s),
           sparse AS (
               SELECT m.chunk_id, ts_rank(m.tsv, q.every_term || q.any_term) AS score,
                      row_number() OVER (ORDER BY m.tier, ts_rank(m.tsv, q.every_term || q.any_term) DESC, m.chunk_id) AS rank
               FROM (SELECT chunk_id, tsv, 1 AS tier FROM strict
                     UNION ALL SELECT chunk_id, tsv, 2 AS tier FROM loose) m, q)"""
    ).format(
        every=tsquery_sql(configs),
        any=any_term_tsquery_sql(configs),
        searchable=searchable_sql(),
        view=sql.Identifier(LIVE_VIEW),
        where=where,
    )


class SparseRetriever:
    name = "sparse"

    def __init__(self, db: Database, *, max_candidates: int = 200, default_config: str = DEFAULT_CONFIG) -> None:
        self.db = db
        self.max_candidates = max_candidates
        self.default_config = default_config
        self._configs = LiveConfigs(db)

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        where, params = filter_clause(filters)
        if not has_search_terms(query):
            return []
        with self.db.pool.connection() as conn:
            statement = sql.SQL(
                """WITH {candidates}
                   SELECT s.chunk_id, c.doc_id, s.score, c.text, {metadata}
                   FROM sparse s JOIN {view} c USING (chunk_id)
                   WHERE s.rank <= %(k)s ORDER BY s.rank"""
            ).format(
                candidates=sparse_candidates_sql(self._configs.get(conn), where),
                metadata=HIT_METADATA,
                view=sql.Identifier(LIVE_VIEW),
            )
            values = {
                **params,
                **query_params(query, self.default_config),
                "common_lexemes": self._configs.common_lexemes,
                "k": k,
                "max_candidates": max(self.max_candidates, k),
            }
            rows = conn.execute(statement, values).fetchall()
        return to_hits(rows)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return [self.search(q, k) for q in queries]
