"""The pgvector search table ``chunk_index``: chunk text, document metadata and a typed vector,
with an HNSW cosine index.

A first build (or a new model or dimension) fills a fresh table, builds HNSW once over all rows,
and swaps it in by rename inside one transaction. Later syncs apply only the difference, in one
transaction, so readers see the previous state or the new one, never a mix.

Usage::

    stats = sync_pgvector_index(db, model="sentence-transformers/all-MiniLM-L6-v2", dim=384)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from sage_platform._faults import crash_point
from sage_platform.db import Database

INDEX_TABLE = "chunk_index"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


class IndexNotReady(RuntimeError):
    """Chunks lack vectors for the model: the embeddings step has not caught up."""


@dataclass
class IndexStats:
    mode: str = "incremental"
    rows: int = 0
    inserted: int = 0
    deleted: int = 0
    load_seconds: float = 0.0
    hnsw_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def load_rows_per_second(self) -> float:
        return self.inserted / self.load_seconds if self.load_seconds else 0.0


_SELECT_ROWS = """
    SELECT c.chunk_id, c.doc_id, c.position, c.text, d.title, d.source, d.metadata, c.doc_hash,
           e.embedding::vector({dim})
    FROM chunks c
    JOIN documents d ON d.doc_id = c.doc_id
    JOIN embeddings e ON e.model = {model} AND e.text_hash = c.text_hash
"""


def sync_pgvector_index(db: Database, *, model: str, dim: int, rebuild: bool = False) -> IndexStats:
    began = time.perf_counter()
    with db.connect() as conn:
        missing = conn.execute(
            """SELECT count(*) FROM chunks c WHERE NOT EXISTS
               (SELECT 1 FROM embeddings e WHERE e.model = %s AND e.text_hash = c.text_hash)""",
            (model,),
        ).fetchone()
        if missing and missing[0]:
            raise IndexNotReady(
                f"{missing[0]} chunks have no vector for model {model}; materialize chunk_embeddings first"
            )
        state = conn.execute("SELECT model, dim FROM index_state WHERE name = %s", (INDEX_TABLE,)).fetchone()
        exists = conn.execute("SELECT to_regclass(%s)", (INDEX_TABLE,)).fetchone()
        if rebuild or not exists or exists[0] is None or state != (model, dim):
            stats = _full_build(conn, model, dim)
        else:
            stats = _apply_difference(conn, model, dim)
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(INDEX_TABLE))).fetchone()
        stats.rows = int(count[0]) if count else 0
        conn.execute(
            """UPDATE index_state SET rows = %s, synced_at = now() WHERE name = %s""",
            (stats.rows, INDEX_TABLE),
        )
    stats.total_seconds = time.perf_counter() - began
    return stats


def _full_build(conn: psycopg.Connection, model: str, dim: int) -> IndexStats:
    stats = IndexStats(mode="full")
    build = sql.Identifier(f"{INDEX_TABLE}_build")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(build))
    conn.execute(
        sql.SQL(
            """CREATE TABLE {} (
                 chunk_id text PRIMARY KEY, doc_id text NOT NULL, position integer NOT NULL,
                 text text NOT NULL, title text, source text NOT NULL, metadata jsonb NOT NULL,
                 doc_hash text NOT NULL, embedding vector({}) NOT NULL)"""
        ).format(build, sql.Literal(dim))
    )
    began = time.perf_counter()
    stats.inserted = conn.execute(
        sql.SQL("INSERT INTO {} ").format(build)
        + sql.SQL(_SELECT_ROWS).format(dim=sql.Literal(dim), model=sql.Literal(model))
    ).rowcount
    stats.load_seconds = time.perf_counter() - began
    conn.commit()
    crash_point("pgvector_index.loaded")
    began = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute(
        sql.SQL(
            "CREATE INDEX {} ON {} USING hnsw (embedding vector_cosine_ops) WITH (m = {}, ef_construction = {})"
        ).format(
            sql.Identifier(f"{INDEX_TABLE}_build_hnsw"),
            build,
            sql.Literal(HNSW_M),
            sql.Literal(HNSW_EF_CONSTRUCTION),
        )
    )
    conn.execute(sql.SQL("CREATE INDEX {} ON {} (doc_id)").format(sql.Identifier(f"{INDEX_TABLE}_build_doc"), build))
    stats.hnsw_seconds = time.perf_counter() - began
    conn.commit()
    # The swap: readers block for the rename only, then see the whole new table.
    live = sql.Identifier(INDEX_TABLE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(live))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(build, live))
    for suffix in ("hnsw", "doc", "pkey"):
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(f"{INDEX_TABLE}_build_{suffix}"), sql.Identifier(f"{INDEX_TABLE}_{suffix}")
            )
        )
    conn.execute(
        """INSERT INTO index_state (name, model, dim, rows) VALUES (%s, %s, %s, 0)
           ON CONFLICT (name) DO UPDATE SET model = excluded.model, dim = excluded.dim, built_at = now()""",
        (INDEX_TABLE, model, dim),
    )
    return stats


def _apply_difference(conn: psycopg.Connection, model: str, dim: int) -> IndexStats:
    stats = IndexStats(mode="incremental")
    live = sql.Identifier(INDEX_TABLE)
    stats.deleted = conn.execute(
        sql.SQL(
            """DELETE FROM {} ci WHERE NOT EXISTS
               (SELECT 1 FROM chunks c WHERE c.chunk_id = ci.chunk_id AND c.doc_hash = ci.doc_hash)"""
        ).format(live)
    ).rowcount
    began = time.perf_counter()
    stats.inserted = conn.execute(
        sql.SQL("INSERT INTO {} ").format(live)
        + sql.SQL(_SELECT_ROWS).format(dim=sql.Literal(dim), model=sql.Literal(model))
        + sql.SQL(" WHERE NOT EXISTS (SELECT 1 FROM {} ci WHERE ci.chunk_id = c.chunk_id)").format(live)
    ).rowcount
    stats.load_seconds = time.perf_counter() - began
    return stats
