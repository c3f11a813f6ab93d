"""Sparse retrieval: PostgreSQL full text (``tsvector`` + GIN) ranked by BM25.

Each chunk is indexed with its own language's configuration; CJK chunks as character bigrams
with ``simple``, so a Chinese query finds Chinese text. A query's words are parsed by every
configuration present, and each chunk scores BM25 (k1 1.2, b 0.75) from the lexicon's document
frequencies (``chunk_lexicon``): a rare word counts for more than a common one, which ``ts_rank``
cannot tell apart.

Which chunks are scored is chosen by rank, not by chance: the query's rarest words first, adding
the next rarer word while all their matches together stay within ``max_candidates``. A chunk with
none of those words holds only common ones, whose weight is small. When even the rarest word is in
more than ``max_candidates`` chunks, the chunks holding every word are scored instead (at most ten
times ``max_candidates`` of them).

Usage::

    retriever = SparseRetriever(db, max_candidates=200)
    hits = retriever.search("incremental ingestion", k=10)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql

from sage_platform.db import Database
from sage_platform.index import LIVE_VIEW
from sage_platform.index.lexicon import LEXICON_VIEW
from sage_platform.retrieval._parallel import each_in_parallel
from sage_platform.retrieval._sql import (
    HIT_METADATA,
    LiveConfigs,
    filter_clause,
    query_lexemes_sql,
    query_params,
    searchable_sql,
    to_hits,
    tsquery_sql,
)
from sage_platform.retrieval.types import Hit
from sage_platform.text_search import DEFAULT_CONFIG, has_search_terms

BM25_K1 = 1.2
BM25_B = 0.75
SCAN_FACTOR = 10  # chunks scored when every query word is common: this many times max_candidates


def sparse_candidates_sql(configs: list[str], where: sql.Composable) -> sql.Composed:
    """CTEs ``q`` (whether the query is searchable) and ``sparse`` (chunk_id, score, rank) by BM25.

    Needs the parameters of ``sparse_params``.
    """
    return sql.SQL(
        """q AS (SELECT {searchable} AS searchable),
           terms AS MATERIALIZED (
               SELECT t.lexeme, coalesce(l.ndoc, 0) AS df
               FROM ({lexemes}) t LEFT JOIN {lexicon} l ON l.word = t.lexeme, q
               WHERE q.searchable AND t.lexeme IS NOT NULL),
           chosen AS (
               SELECT CASE WHEN count(*) = 0 THEN NULL
                           WHEN min(df) <= %(max_candidates)s THEN string_agg(quote_literal(lexeme), ' | ')::tsquery
                           ELSE {every} END AS matching
               FROM (SELECT lexeme, df, sum(df) OVER (ORDER BY df, lexeme) AS running FROM terms WHERE df > 0) r
               WHERE running <= %(max_candidates)s OR running = df),
           matches AS MATERIALIZED (
               SELECT ci.chunk_id, ci.tsv FROM {view} ci
               WHERE {where} AND ci.tsv @@ (SELECT matching FROM chosen)
               LIMIT %(scan_limit)s),
           sparse AS (
               SELECT m.chunk_id, s.score, row_number() OVER (ORDER BY s.score DESC, m.chunk_id) AS rank
               FROM matches m CROSS JOIN LATERAL (
                   SELECT coalesce(sum(
                       ln(1 + (greatest(%(rows)s, t.df) - t.df + 0.5) / (t.df + 0.5))
                       * x.tf * (%(k1)s + 1)
                       / (x.tf + %(k1)s * (1 - %(b)s + %(b)s * length(m.tsv) / %(mean_length)s))), 0) AS score
                   FROM (SELECT u.lexeme, greatest(1, cardinality(u.positions)) AS tf FROM unnest(m.tsv) u) x
                   JOIN terms t ON t.lexeme = x.lexeme) s)"""
    ).format(
        searchable=searchable_sql(),
        lexemes=query_lexemes_sql(configs),
        lexicon=sql.Identifier(LEXICON_VIEW),
        view=sql.Identifier(LIVE_VIEW),
        every=tsquery_sql(configs),
        where=where,
    )


def sparse_params(live: LiveConfigs, query: str, default_config: str, max_candidates: int) -> dict[str, Any]:
    """The parameters ``sparse_candidates_sql`` needs, from statistics ``live.get`` has just read."""
    return {
        **query_params(query, default_config),
        "rows": live.rows,
        "mean_length": live.mean_length,
        "k1": BM25_K1,
        "b": BM25_B,
        "max_candidates": max_candidates,
        "scan_limit": SCAN_FACTOR * max_candidates,
    }


class SparseRetriever:
    name = "sparse"

    def __init__(self, db: Database, *, max_candidates: int = 200, default_config: str = DEFAULT_CONFIG) -> None:
        self.db = db
        self.max_candidates = max_candidates
        self.default_config = default_config
        self._configs = LiveConfigs()

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]:
        where, params = filter_clause(filters)
        if not has_search_terms(query):
            return []
        with self.db.search_pool.connection() as conn:
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
                **sparse_params(self._configs, query, self.default_config, max(self.max_candidates, k)),
                "k": k,
            }
            rows = conn.execute(statement, values).fetchall()
        return to_hits(rows)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return each_in_parallel(lambda query: self.search(query, k), queries)
