"""Index versions: one row per built pgvector table or Elasticsearch index, one of them live.

A rebuild creates a ``building`` version beside the live one, checks it, then in one transaction
makes it ``live`` and the old live one ``previous`` (kept for rollback); older versions are
dropped. A version that fails its checks becomes ``failed`` and the live one is untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class IndexVersion:
    version: int
    backend: str
    name: str
    model: str
    dim: int
    status: str


def live_version(conn: psycopg.Connection, backend: str) -> IndexVersion | None:
    row = conn.execute(
        """SELECT version, backend, name, model, dim, status FROM index_versions
           WHERE backend = %s AND status = 'live'""",
        (backend,),
    ).fetchone()
    return IndexVersion(*row) if row else None


def new_version(conn: psycopg.Connection, backend: str, name_prefix: str, model: str, dim: int) -> IndexVersion:
    """Reserve the next version number and its name (``<prefix><version>``)."""
    row = conn.execute("SELECT nextval(pg_get_serial_sequence('index_versions', 'version'))").fetchone()
    version = int(row[0]) if row else 0
    name = f"{name_prefix}{version}"
    conn.execute(
        """INSERT INTO index_versions (version, backend, name, model, dim, status)
           VALUES (%s, %s, %s, %s, %s, 'building')""",
        (version, backend, name, model, dim),
    )
    return IndexVersion(version, backend, name, model, dim, "building")


def mark(conn: psycopg.Connection, version: int, status: str, **fields: Any) -> None:
    conn.execute(
        """UPDATE index_versions SET status = %s, rows = coalesce(%s, rows), checks = checks || %s,
               activated_at = CASE WHEN %s = 'live' THEN now() ELSE activated_at END
           WHERE version = %s""",
        (status, fields.get("rows"), Jsonb(fields.get("checks", {})), status, version),
    )


def promote(conn: psycopg.Connection, backend: str, version: int) -> list[IndexVersion]:
    """Make ``version`` live, the old live one previous; returns the versions to drop now."""
    conn.execute(
        """UPDATE index_versions SET status = 'dropped'
           WHERE backend = %s AND status = 'previous'""",
        (backend,),
    )
    conn.execute(
        "UPDATE index_versions SET status = 'previous' WHERE backend = %s AND status = 'live'",
        (backend,),
    )
    mark(conn, version, "live")
    # A build still 'building' beside the one going live is one whose process was killed: record it as such.
    conn.execute(
        """UPDATE index_versions SET status = 'failed',
               checks = checks || '{"failure": "the build did not finish (its process stopped)"}'::jsonb
           WHERE backend = %s AND status = 'building' AND version <> %s""",
        (backend, version),
    )
    rows = conn.execute(
        """SELECT version, backend, name, model, dim, status FROM index_versions
           WHERE backend = %s AND status IN ('dropped', 'failed') AND version <> %s""",
        (backend, version),
    ).fetchall()
    return [IndexVersion(*row) for row in rows]


def check_results(
    rows: int, chunk_count: int, recall: Callable[[], float], *, min_recall: float, k: int
) -> tuple[dict[str, Any], str | None]:
    """The checks a version must pass before readers switch: ``(results, failure reason or None)``."""
    results: dict[str, Any] = {"rows": rows, "chunks": chunk_count}
    if rows != chunk_count:
        return results, f"row count {rows} differs from the {chunk_count} chunks"
    measured = recall()
    results[f"recall@{k}"] = round(measured, 4)
    if measured < min_recall:
        return results, f"recall@{k} {measured:.3f} against exact search is below {min_recall}"
    return results, None


def gate_queries(vectors: np.ndarray) -> np.ndarray:
    """Queries for a recall check, made from stored vectors: each is the normalised midpoint of two of
    them, plus noise. A stored vector plus a little noise has itself as an easy nearest neighbour; a
    midpoint, like a real question, lies between documents, where an approximate search goes wrong."""
    rng = np.random.default_rng(0)
    partners = vectors[rng.permutation(len(vectors))]
    queries = vectors + partners
    queries = queries + rng.normal(0, 0.3 / np.sqrt(vectors.shape[1]), vectors.shape).astype(np.float32)
    norms = np.linalg.norm(queries, axis=1, keepdims=True)
    return np.asarray(queries / np.where(norms == 0, 1, norms), dtype=np.float32)
