"""The pgvector search tables: chunk text, document metadata, a ``tsvector`` and a typed vector.

Readers query the view ``chunk_index``, which points at the live version ``chunk_index_v<N>``.
A rebuild (the first build, a new model or dimension, or ``index_rebuild_job``) fills a new table
beside the live one, builds HNSW (cosine) and GIN once over all rows, checks it (row count, and
recall@10 against exact search), then repoints the view in one transaction. A failed check leaves
the live version untouched. Between rebuilds, ``sync_pgvector_index`` applies only the difference
to the live table, in one transaction: over the chunks noted as written or removed since the last
sync of that version (db/change_notes.py), or over every chunk after a rebuild or a rollback.

Usage::

    stats = sync_pgvector_index(db, model="sentence-transformers/all-MiniLM-L6-v2", dim=384)
    stats = rebuild_pgvector_index(db, model=..., dim=384, checks=IndexChecks(min_recall=0.95))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from sage_platform._faults import crash_point
from sage_platform.db import Database
from sage_platform.db.change_notes import record_read, take_notes
from sage_platform.db.vectors import as_array
from sage_platform.index import lexicon, versions
from sage_platform.index.vector_kinds import VectorIndex, choose_kind
from sage_platform.index.versions import IndexVersion

LIVE_VIEW = "chunk_index"
TABLE_PREFIX = "chunk_index_v"
BACKEND = "pgvector"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
_LOCK_ID = 0x5A6E_0002
NOTES_READER = "pgvector_index"  # the chunks' change notes this sync reads (db/change_notes.py)


class IndexNotReady(RuntimeError):
    """Chunks lack vectors for the model: the embeddings step has not caught up."""


class IndexCheckFailed(RuntimeError):
    """A rebuilt index failed a check before going live; the live index is untouched."""


@dataclass(frozen=True)
class IndexChecks:
    """What a build checks before readers switch to it, and which vector index it builds."""

    sample_queries: int = 200
    min_recall: float = 0.95
    ef_search: int = 100
    k: int = 10
    binary_above_rows: int = 1_000_000  # more rows than this: binary-quantized HNSW, re-ranked (vector_kinds)


@dataclass
class IndexStats:
    mode: str = "incremental"
    version: int = 0
    rows: int = 0
    inserted: int = 0
    deleted: int = 0
    load_seconds: float = 0.0
    hnsw_seconds: float = 0.0
    total_seconds: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)
    compared: int | None = None  # chunks a sync compared: its noted chunks; None, every chunk

    @property
    def load_rows_per_second(self) -> float:
        return self.inserted / self.load_seconds if self.load_seconds else 0.0


def _rows_sql(dim: int, model: str) -> sql.Composed:
    return sql.SQL(
        """SELECT c.chunk_id, c.doc_id, c.position, c.text, d.title, d.source, d.metadata, c.doc_hash,
                  c.ts_config::regconfig, to_tsvector(c.ts_config::regconfig, coalesce(c.search_text, c.text)),
                  e.embedding::vector({dim})
           FROM chunks c
           JOIN documents d ON d.doc_id = c.doc_id
           JOIN embeddings e ON e.model = {model} AND e.text_hash = c.text_hash"""
    ).format(dim=sql.Literal(dim), model=sql.Literal(model))


def ensure_vectors(conn: psycopg.Connection, model: str, chunk_ids: list[str] | None = None) -> int:
    """How many chunks there are (of ``chunk_ids``, when given); refused if one has no vector."""
    # A join, not NOT EXISTS: one hash join instead of an index probe per chunk (5x at 87k chunks).
    only = sql.SQL("WHERE c.chunk_id = ANY(%(ids)s)") if chunk_ids is not None else sql.SQL("")
    row = conn.execute(
        sql.SQL(
            """SELECT count(*), count(*) FILTER (WHERE e.text_hash IS NULL)
               FROM chunks c LEFT JOIN (SELECT text_hash FROM embeddings WHERE model = %(model)s) e USING (text_hash)
               {only}"""
        ).format(only=only),
        {"model": model, "ids": chunk_ids},
    ).fetchone()
    total, missing = (int(row[0]), int(row[1])) if row else (0, 0)
    if missing:
        raise IndexNotReady(f"{missing} chunks have no vector for model {model}; materialize chunk_embeddings first")
    return total


def sync_pgvector_index(db: Database, *, model: str, dim: int, checks: IndexChecks | None = None) -> IndexStats:
    """Bring the live index in step with the chunks: a difference, or a full rebuild when needed.

    The difference is taken over the chunks written or removed since the last sync of this version
    (their change notes), or over every chunk after a rebuild, a rollback, a first sync, and once a day."""
    began = time.perf_counter()
    with db.connect() as conn:
        live = versions.live_version(conn, BACKEND)
    if live is None or (live.model, live.dim) != (model, dim):
        return rebuild_pgvector_index(db, model=model, dim=dim, checks=checks or IndexChecks())
    with db.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        taken = take_notes(conn, NOTES_READER, f"version {live.version}")
        noted = taken.keys
        ensure_vectors(conn, model, noted)
        table = sql.Identifier(live.name)
        changes = sql.Identifier(lexicon.CHANGES_TABLE)
        stats = IndexStats(mode="incremental", version=live.version)
        if noted is not None:
            stats.compared = len(noted)
        params = {"ids": noted}
        lexicon.start_changes(conn)
        stats.deleted = conn.execute(
            sql.SQL(
                """WITH gone AS (DELETE FROM {table} ci WHERE {only} NOT EXISTS
                       (SELECT 1 FROM chunks c WHERE c.chunk_id = ci.chunk_id AND c.doc_hash = ci.doc_hash)
                       RETURNING ci.tsv)
                   INSERT INTO {changes} SELECT -1, tsv FROM gone"""
            ).format(table=table, changes=changes, only=_only(noted, "ci")),
            params,
        ).rowcount
        loaded = time.perf_counter()
        stats.inserted = conn.execute(
            sql.SQL("WITH added AS (INSERT INTO {} ").format(table)
            + _rows_sql(dim, model)
            + sql.SQL(" WHERE {only} NOT EXISTS (SELECT 1 FROM {table} ci WHERE ci.chunk_id = c.chunk_id)").format(
                only=_only(noted, "c"), table=table
            )
            + sql.SQL(" RETURNING tsv) INSERT INTO {} SELECT 1, tsv FROM added").format(changes),
            params,
        ).rowcount
        stats.load_seconds = time.perf_counter() - loaded
        lexicon.apply_changes(conn, live.name)
        stats.rows = _count(conn, live.name)
        conn.execute(
            "UPDATE index_versions SET rows = %s, synced_at = now() WHERE version = %s", (stats.rows, live.version)
        )
        if noted is None or stats.inserted:
            _record_configs(conn, live)
        record_read(conn, taken)
    stats.total_seconds = time.perf_counter() - began
    return stats


def _only(chunk_ids: list[str] | None, alias: str) -> sql.Composable:
    """Narrows a difference to the noted chunks (``%(ids)s``), or leaves it over every chunk."""
    if chunk_ids is None:
        return sql.SQL("")
    return sql.SQL("{}.chunk_id = ANY(%(ids)s) AND").format(sql.Identifier(alias))


def rebuild_pgvector_index(db: Database, *, model: str, dim: int, checks: IndexChecks) -> IndexStats:
    """Build a new version beside the live one, check it, and only then switch readers to it."""
    began = time.perf_counter()
    stats = IndexStats(mode="rebuild")
    with db.connect() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            chunk_count = ensure_vectors(conn, model)
            version = versions.new_version(conn, BACKEND, TABLE_PREFIX, model, dim)
            conn.commit()
            stats.version = version.version
            _build_table(conn, version, stats)
            crash_point("pgvector_index.loaded")
            stats.rows = _count(conn, version.name)
            index = VectorIndex(choose_kind(stats.rows, checks.binary_above_rows), version.dim)
            _build_indexes(conn, version, stats, index)
            stats.checks = {**_check(conn, version, chunk_count, stats.rows, checks, index), "vector_index": index.kind}
            _switch_readers(conn, version, stats)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
            conn.commit()
    stats.total_seconds = time.perf_counter() - began
    return stats


def _record_configs(conn: psycopg.Connection, version: IndexVersion) -> None:
    """Which text-search configurations the table holds, so queries parse once per configuration."""
    conn.execute(
        sql.SQL(
            """UPDATE index_versions SET checks = checks || jsonb_build_object('ts_configs',
                   (SELECT coalesce(jsonb_agg(DISTINCT ts_config::text), '[]') FROM {}))
               WHERE version = %s"""
        ).format(sql.Identifier(version.name)),
        (version.version,),
    )


def _count(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
    return int(row[0]) if row else 0


def _build_table(conn: psycopg.Connection, version: IndexVersion, stats: IndexStats) -> None:
    table = sql.Identifier(version.name)
    # Rows stay whole up to 8 kB: a search reads a chunk's vector, text and tsvector with no TOAST lookups.
    conn.execute(
        sql.SQL(
            """CREATE TABLE {} (
                 chunk_id text PRIMARY KEY, doc_id text NOT NULL, position integer NOT NULL, text text NOT NULL,
                 title text, source text NOT NULL, metadata jsonb NOT NULL, doc_hash text NOT NULL,
                 ts_config regconfig NOT NULL, tsv tsvector NOT NULL, embedding vector({}) NOT NULL)
               WITH (toast_tuple_target = 8160)"""
        ).format(table, sql.Literal(version.dim))
    )
    loaded = time.perf_counter()
    stats.inserted = conn.execute(
        sql.SQL("INSERT INTO {} ").format(table) + _rows_sql(version.dim, version.model)
    ).rowcount
    stats.load_seconds = time.perf_counter() - loaded
    lexicon.build_lexicon(conn, version.name)
    conn.commit()


def _build_indexes(conn: psycopg.Connection, version: IndexVersion, stats: IndexStats, index: VectorIndex) -> None:
    """HNSW and GIN over a full table: one bulk build each, faster than growing them row by row."""
    table = sql.Identifier(version.name)
    began = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute(index.create_sql(f"{version.name}_hnsw", version.name, m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION))
    stats.hnsw_seconds = time.perf_counter() - began
    for suffix, definition in (
        ("tsv", "USING gin (tsv)"),
        ("doc", "(doc_id)"),
        ("source", "(source)"),
        ("metadata", "USING gin (metadata jsonb_path_ops)"),
    ):
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} " + definition).format(sql.Identifier(f"{version.name}_{suffix}"), table)
        )
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    conn.commit()


def measure_recall(
    conn: psycopg.Connection, table: str, checks: IndexChecks, index: VectorIndex | None = None
) -> float:
    """Mean recall@k of the vector index, searched as readers search it, against exact search, on
    ``gate_queries`` made from sample rows.

    A neighbour counts as found when its distance is within the exact k-th distance, so ties
    between identical vectors (identical chunk texts) do not count as misses.
    """
    name = sql.Identifier(table)
    rows = conn.execute(
        sql.SQL("SELECT embedding FROM {} ORDER BY md5(chunk_id) LIMIT %s").format(name), (checks.sample_queries,)
    ).fetchall()
    if not rows:
        return 1.0
    queries = versions.gate_queries(np.stack([as_array(row[0]) for row in rows]))
    index = index or VectorIndex(dim=len(queries[0]))
    approximate_search = sql.SQL(
        "SELECT embedding <=> %(vector)s FROM ({}) n ORDER BY embedding <=> %(vector)s"
    ).format(index.nearest_sql(name))
    exact_search = sql.SQL(
        "SELECT embedding <=> %(vector)s FROM {} ORDER BY embedding <=> %(vector)s LIMIT %(nearest)s"
    ).format(name)
    hits = 0
    total = 0
    with conn.transaction():
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true)", (str(index.ef_search(checks.ef_search, checks.k)),)
        )
        # The approximate side must go through the index: on a small table the planner would otherwise
        # scan it exactly, and the gate would measure exact search against itself.
        # Both settings are set in each phase: inside a caller's transaction this block is a savepoint,
        # whose SET LOCALs outlive it, so a second call would otherwise inherit "no index scans". And
        # nothing is prepared: a prepared statement keeps its plan when the settings change, so the
        # "exact" side would reuse the index scan and the gate would compare the index with itself.
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_indexscan = on")
        approximate = [
            [d for (d,) in conn.execute(approximate_search, {"vector": q, **index.params(checks.k)}, prepare=False)]
            for q in queries
        ]
        conn.execute("SET LOCAL enable_seqscan = on")
        conn.execute("SET LOCAL enable_indexscan = off")
        exact = [
            [d for (d,) in conn.execute(exact_search, {"vector": q, "nearest": checks.k}, prepare=False)]
            for q in queries
        ]
        conn.execute("SET LOCAL enable_indexscan = on")
    for found, truth in zip(approximate, exact, strict=True):
        if not truth:
            continue
        bound = truth[-1] + 1e-6
        hits += sum(1 for d in found if d <= bound)
        total += len(truth)
    return hits / total if total else 1.0


def _check(
    conn: psycopg.Connection,
    version: IndexVersion,
    chunk_count: int,
    rows: int,
    checks: IndexChecks,
    index: VectorIndex,
) -> dict[str, Any]:
    results, failure = versions.check_results(
        rows,
        chunk_count,
        lambda: measure_recall(conn, version.name, checks, index),
        min_recall=checks.min_recall,
        k=checks.k,
    )
    conn.commit()
    if failure:
        versions.mark(conn, version.version, "failed", rows=rows, checks={**results, "failure": failure})
        drop_version_tables(conn, version.name)
        conn.commit()
        raise IndexCheckFailed(f"index version {version.version} not switched in: {failure}")
    return results


def _switch_readers(conn: psycopg.Connection, version: IndexVersion, stats: IndexStats) -> None:
    """One transaction: the view now reads the new table; the old live one stays as previous."""
    versions.mark(conn, version.version, "building", rows=stats.rows, checks=stats.checks)
    _record_configs(conn, version)
    point_view(conn, version.name)
    for stale in versions.promote(conn, BACKEND, version.version):  # older versions, failed or crashed builds
        drop_version_tables(conn, stale.name)
    conn.commit()


def point_view(conn: psycopg.Connection, table: str) -> None:
    """Readers' views (rows and lexicon) now read ``table``; callers commit, so both move together."""
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(LIVE_VIEW)))
    conn.execute(sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(sql.Identifier(LIVE_VIEW), sql.Identifier(table)))
    lexicon.point_lexicon_view(conn, table)


def drop_version_tables(conn: psycopg.Connection, table: str) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    lexicon.drop_lexicon(conn, table)


def rollback_pgvector_index(db: Database) -> IndexVersion:
    """Make the previous version live again (the current live one becomes previous)."""
    with db.connect() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        rows = conn.execute(
            """SELECT version, backend, name, model, dim, status FROM index_versions
               WHERE backend = %s AND status IN ('live', 'previous') ORDER BY version DESC""",
            (BACKEND,),
        ).fetchall()
        current = {row[5]: IndexVersion(*row) for row in rows}
        if "previous" not in current or "live" not in current:
            raise ValueError("there is no previous pgvector index version to roll back to")
        conn.execute("UPDATE index_versions SET status = 'building' WHERE version = %s", (current["live"].version,))
        versions.mark(conn, current["previous"].version, "live")
        versions.mark(conn, current["live"].version, "previous")
        point_view(conn, current["previous"].name)
    return current["previous"]
