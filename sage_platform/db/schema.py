"""What a table looks like in the database itself, for metadata that cannot drift from the migrations.

Usage::

    with db.connect() as conn:
        table_columns(conn, "documents")   # [('doc_id', 'text'), ('title', 'text'), …]
"""

from __future__ import annotations

import psycopg


def table_columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """``(name, type)`` of each column of ``table`` in the current schema, in order."""
    rows = conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position""",
        (table,),
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]
