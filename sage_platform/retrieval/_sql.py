"""What the PostgreSQL retrievers share: filters in SQL, the hit projection, per-connection settings."""

from __future__ import annotations

import time
import weakref
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from sage_platform.filters import split_filters
from sage_platform.index.vector_kinds import FULL, VectorIndex
from sage_platform.retrieval.types import Hit
from sage_platform.text_search import CJK_CONFIG, cjk_bigrams, config_for_language, has_cjk, websearch_query

# Columns every retriever returns, in Hit order (score comes from each query).
HIT_METADATA = sql.SQL(
    "jsonb_build_object('title', title, 'source', source, 'position', position, 'language', ts_config::text) || metadata"
)
_EF_SEARCH: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()


def filter_clause(filters: Mapping[str, str] | None) -> tuple[sql.Composable, dict[str, Any]]:
    """A parameterised WHERE condition; keys come from an allow-list, values are always parameters."""
    columns, metadata = split_filters(filters)
    parts: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for i, (column, value) in enumerate(sorted(columns.items())):
        name = f"filter_{i}"
        if column == "language":
            parts.append(sql.SQL("ts_config = {}::regconfig").format(sql.Placeholder(name)))
            params[name] = config_for_language(value)
        else:
            parts.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(name)))
            params[name] = value
    if metadata:
        parts.append(sql.SQL("metadata @> {}").format(sql.Placeholder("filter_metadata")))
        params["filter_metadata"] = Jsonb(metadata)
    return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")), params


def use_ef_search(conn: psycopg.Connection, ef_search: int) -> None:
    """Set hnsw.ef_search once per pooled connection, not once per query."""
    if _EF_SEARCH.get(conn) != ef_search:
        conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))
        _EF_SEARCH[conn] = ef_search


def to_hits(rows: list[tuple[Any, ...]]) -> list[Hit]:
    return [Hit(chunk_id, doc_id, float(score), text, metadata) for chunk_id, doc_id, score, text, metadata in rows]


class LiveConfigs:
    """What queries need to know of the live index, re-read at most every ``ttl`` seconds: its text-search
    configurations, its row count and mean row length (in lexemes) for BM25, and its vector index."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._value: list[str] = []
        self.rows = 0
        self.mean_length = 1.0
        self.vector_index = VectorIndex()
        self._read_at = float("-inf")

    def get(self, conn: psycopg.Connection) -> list[str]:
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            row = conn.execute(
                """SELECT checks->'ts_configs', rows, (checks->>'text_length')::float8,
                          coalesce(checks->>'vector_index', %s), dim
                   FROM index_versions WHERE backend = 'pgvector' AND status = 'live'""",
                (FULL,),
            ).fetchone()
            self._value = sorted(row[0]) if row and row[0] else []
            self.rows = int(row[1] or 0) if row else 0
            self.mean_length = max(1.0, (row[2] or 0.0) / self.rows) if row and self.rows else 1.0
            self.vector_index = VectorIndex(row[3], int(row[4])) if row else VectorIndex()
            self._read_at = now
        return self._value


def _parsed(config: str, template: str) -> sql.Composable:
    placeholder = sql.Placeholder("query_cjk" if config == CJK_CONFIG else "query")
    return sql.SQL(template).format(config=sql.Literal(config), text=placeholder)


def tsquery_sql(configs: list[str]) -> sql.Composable:
    """All query terms (websearch syntax), parsed by each configuration present; CJK ones get bigrams."""
    if not configs:
        return sql.SQL("''::tsquery")
    return sql.SQL(" || ").join(_parsed(c, "websearch_to_tsquery({config}::regconfig, {text})") for c in configs)


def query_lexemes_sql(configs: list[str]) -> sql.Composable:
    """The query's distinct lexemes, as each configuration present parses them (CJK ones as bigrams)."""
    if not configs:
        return sql.SQL("SELECT NULL::text AS lexeme WHERE false")
    template = "SELECT unnest(tsvector_to_array(to_tsvector({config}::regconfig, {text}))) AS lexeme"
    return sql.SQL(" UNION ").join(_parsed(c, template) for c in configs)


def searchable_sql() -> sql.Composable:
    """True unless the query is only stop words (in the default configuration) and has no CJK."""
    return sql.SQL("(%(query_has_cjk)s OR numnode(websearch_to_tsquery(%(guard_config)s::regconfig, %(query)s)) > 0)")


def query_params(query: str, default_config: str) -> dict[str, Any]:
    cjk = has_cjk(query)
    query = websearch_query(query)
    return {
        "query": query,
        "query_cjk": cjk_bigrams(query) if cjk else "",
        "query_has_cjk": cjk,
        "guard_config": default_config,
    }
