"""The data-quality suites that guard the asset graph, one per stage. Each reads its stage's rows
from PostgreSQL into a frame (vectors summarised in SQL: dimension, norm) and validates it: the whole
table, or (``whole_table=False``, as the asset checks run them) only the rows written since the suite
last passed under the same rules (db/change_notes.py).

Usage::

    result = documents_quality(db, settings)
    if not result.success: ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pandas as pd
import psycopg

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.db.change_notes import record_read, take_notes
from sage_platform.index import LIVE_VIEW
from sage_platform.index.pgvector import BACKEND
from sage_platform.index.versions import live_version
from sage_platform.ingest import SUPPORTED_SUFFIXES
from sage_platform.quality.gx import QualityResult, validate_frame

UNIT_NORM_TOLERANCE = 1e-3


CHANGED_ROWS = "rows written since the last pass"


def _fingerprint(*parts: object) -> str:
    """The same rules give the same fingerprint in every process (reprs of queries and expectations)."""
    return hashlib.sha256("\x1f".join(repr(part) for part in parts).encode()).hexdigest()[:32]


def _frame(conn: psycopg.Connection, query: str, params: Sequence[object] = ()) -> pd.DataFrame:
    cursor = conn.execute(query, params)
    columns = [c.name for c in cursor.description or []]
    return pd.DataFrame(cursor.fetchall(), columns=columns)


def _validate_changes(
    db: Database,
    suite: str,
    query: str,
    params: Sequence[object],
    *,
    key: str,
    expectations: Sequence[Any],
    id_column: str,
    whole_table: bool,
    basis: str = "",
) -> QualityResult:
    """Validate the rows written since the suite's last pass (``query`` narrowed to ``key`` in the noted
    keys), or the whole table (db/change_notes.py says when); the notes are kept unless it passes."""
    rules = _fingerprint(query, params, expectations, basis)
    with db.connect() as conn, conn.transaction():
        taken = take_notes(conn, suite, rules, whole_table=whole_table)
        keys = taken.keys
        if keys is None:
            result = validate_frame(suite, _frame(conn, query, params), expectations, id_column=id_column)
        elif keys:
            frame = _frame(conn, f"{query} WHERE {key} = ANY(%s)", [*params, keys])
            result = validate_frame(suite, frame, expectations, id_column=id_column)
            result.scope = CHANGED_ROWS
        else:  # nothing written since the last pass
            result = QualityResult(suite, len(expectations), 0, [], CHANGED_ROWS)
        if not result.success:
            raise psycopg.Rollback()
        record_read(conn, taken)
    return result


def documents_quality(db: Database, settings: Settings, *, whole_table: bool = True) -> QualityResult:
    """Non-empty text, unique ids, size within bounds, allowed file types."""
    import great_expectations.expectations as gxe

    return _validate_changes(
        db,
        "raw_documents",
        """SELECT doc_id, length(btrim(text)) AS text_length, size_bytes,
                  lower(substring(source from '\\.[^./]+$')) AS file_type
           FROM documents""",
        (),
        key="doc_id",
        expectations=[
            gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
            gxe.ExpectColumnValuesToBeBetween(column="text_length", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="size_bytes", min_value=1, max_value=settings.max_document_bytes),
            gxe.ExpectColumnValuesToBeInSet(column="file_type", value_set=list(SUPPORTED_SUFFIXES)),
        ],
        id_column="doc_id",
        whole_table=whole_table,
    )


def chunks_quality(db: Database, settings: Settings, *, whole_table: bool = True) -> QualityResult:
    """Token counts within bounds, no empty chunk, every chunk's document exists."""
    import great_expectations.expectations as gxe

    return _validate_changes(
        db,
        "document_chunks",
        """SELECT c.chunk_id, c.token_count, length(btrim(c.text)) AS text_length,
                  (d.doc_id IS NOT NULL) AS document_exists
           FROM chunks c LEFT JOIN documents d ON d.doc_id = c.doc_id""",
        (),
        key="c.chunk_id",
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(column="token_count", min_value=1, max_value=settings.chunk_size),
            gxe.ExpectColumnValuesToBeBetween(column="text_length", min_value=1),
            gxe.ExpectColumnValuesToBeInSet(column="document_exists", value_set=[True]),
        ],
        id_column="chunk_id",
        whole_table=whole_table,
    )


def embeddings_quality(db: Database, *, model: str, dim: int, whole_table: bool = True) -> QualityResult:
    """One vector per chunk for the current model, the right dimension, finite values, unit norm."""
    import great_expectations.expectations as gxe

    return _validate_changes(
        db,
        "chunk_embeddings",
        """SELECT c.chunk_id, (e.text_hash IS NOT NULL) AS has_vector, vector_dims(e.embedding) AS dim,
                  vector_norm(e.embedding) AS norm,
                  (vector_norm(e.embedding) = vector_norm(e.embedding)
                   AND vector_norm(e.embedding) < 'infinity'::float8) AS finite
           FROM chunks c LEFT JOIN embeddings e ON e.model = %s AND e.text_hash = c.text_hash""",
        (model,),
        key="c.text_hash",
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(column="has_vector", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="dim", value_set=[dim]),
            gxe.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(
                column="norm", min_value=1 - UNIT_NORM_TOLERANCE, max_value=1 + UNIT_NORM_TOLERANCE
            ),
        ],
        id_column="chunk_id",
        whole_table=whole_table,
    )


def index_quality(db: Database, *, whole_table: bool = True) -> QualityResult:
    """The live index holds exactly the chunks: every chunk, under its document's current hash, and
    no row of a chunk that is gone."""
    import great_expectations.expectations as gxe

    with db.connect() as conn:
        live = live_version(conn, BACKEND)
    return _validate_changes(
        db,
        "pgvector_index_quality",
        f"""SELECT k.chunk_id, (c.chunk_id IS NOT NULL) AS chunk_exists,
                   (c.chunk_id IS NULL OR coalesce(ci.doc_hash = c.doc_hash, false)) AS indexed
            FROM (SELECT chunk_id FROM chunks UNION SELECT chunk_id FROM {LIVE_VIEW}) k
            LEFT JOIN chunks c ON c.chunk_id = k.chunk_id
            LEFT JOIN {LIVE_VIEW} ci ON ci.chunk_id = k.chunk_id""",  # noqa: S608 - a constant name
        (),
        key="k.chunk_id",
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(column="chunk_exists", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="indexed", value_set=[True]),
        ],
        id_column="chunk_id",
        whole_table=whole_table,
        basis=f"version {live.version if live else None}",
    )
