"""Asset metadata in Dagster's own types: tables with schemas, and the standard ``dagster/*`` keys.

Usage::

    preview = table([("doc_id", "string"), ("bytes", "int")], rows)
    metadata = {**stored_table(conn, "documents", rows=count), "preview": preview}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from sage_platform.db.schema import table_columns

# PostgreSQL types as Dagster shows them; anything else keeps its own name.
_TYPE_NAMES = {"text": "string", "integer": "int", "bigint": "int", "double precision": "float", "real": "float",
               "boolean": "bool", "jsonb": "json", "timestamp with time zone": "timestamp"}  # fmt: skip


def table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], *, width: int = 80) -> MetadataValue:
    """A table the UI renders and sorts; long text is shortened to ``width`` characters."""

    def cell(value: Any, kind: str) -> str | int | float | bool | None:
        if value is None or (kind in ("int", "float", "bool") and isinstance(value, int | float | bool)):
            return value
        text = " ".join(str(value).split())
        return text if len(text) <= width else text[: width - 1] + "…"

    schema = TableSchema(columns=[TableColumn(name, kind) for name, kind in columns])
    records = [TableRecord({name: cell(v, kind) for (name, kind), v in zip(columns, row, strict=True)}) for row in rows]
    return MetadataValue.table(records=records, schema=schema)


def stored_table(conn: psycopg.Connection, name: str, *, rows: int) -> dict[str, Any]:
    """``dagster/table_name``, ``dagster/row_count`` and ``dagster/column_schema`` of a table we write."""
    columns = [TableColumn(column, _TYPE_NAMES.get(kind, kind)) for column, kind in table_columns(conn, name)]
    return {
        "dagster/table_name": name,
        "dagster/row_count": rows,
        "dagster/column_schema": TableSchema(columns=columns),
    }
