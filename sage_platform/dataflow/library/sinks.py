"""Sinks: the terminal, a JSONL file, a PostgreSQL table, and Dagster metadata.

Usage::

    .sink(TerminalSink)                                          # one line per record (query → answer)
    .sink(FileSink, {"file_path": "answers.jsonl"})
    .sink(TableSink, {"table": "my_answers", "columns": ["query", "answer"]})
    .sink(DagsterMetadataSink, {"preview_rows": 10})             # shown on the asset or op that ran it
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar, TextIO

from sage_platform.dataflow.functions import SinkFunction


class TerminalSink(SinkFunction):
    """Prints each record: ``query`` and ``answer`` when the record has them, else the record as JSON.
    ``stream`` (default stdout) is any text file object."""

    def open(self) -> None:
        self._out: TextIO = self.config.get("stream") or sys.stdout

    def execute(self, data: Any) -> None:
        if isinstance(data, dict) and "answer" in data:
            text = f"Q: {data.get('query', '')}\nA: {data['answer']}\n"
        else:
            text = json.dumps(data, ensure_ascii=False, default=str) + "\n"
        self._out.write(text)
        self._out.flush()


class FileSink(SinkFunction):
    """Appends one JSON object per record to ``file_path`` (``mode: "w"`` to start afresh); ``fields``
    keeps only those keys. The file is flushed per batch and closed with the run."""

    batch_size = 64

    def open(self) -> None:
        path = Path(self.config["file_path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open(self.config.get("mode", "a"), encoding="utf-8")
        self._fields: list[str] | None = self.config.get("fields")

    def execute_batch(self, records: list[Any]) -> list[Any]:
        for record in records:
            value = {k: record.get(k) for k in self._fields} if self._fields else record
            self._file.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
        self._file.flush()
        return [None] * len(records)

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {}

    def abort(self) -> None:
        self._file.close()


class TableSink(SinkFunction):
    """Inserts records into PostgreSQL ``table`` (``columns``: default the first record's keys; dicts
    and lists go in as JSON). ``url`` defaults to the platform's database. Each batch commits, except
    with ``replace: true``: the table's rows are deleted and the new ones written in one transaction,
    committed only when the run succeeds."""

    batch_size = 100

    def open(self) -> None:
        import psycopg

        from sage_platform.dataflow.library._platform import platform_for

        url = self.config.get("url") or platform_for(self.config).db.url
        self._conn = psycopg.connect(url)
        self._columns: list[str] | None = self.config.get("columns")
        self._replace = bool(self.config.get("replace"))
        if self._replace:
            self._conn.execute(self._sql("DELETE FROM {}", self.config["table"]))

    def execute_batch(self, records: list[Any]) -> list[Any]:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        columns = self._columns = self._columns or list(records[0])
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(*self.config["table"].split(".")),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        rows = [[Jsonb(v) if isinstance(v, dict | list) else v for v in (r.get(c) for c in columns)] for r in records]
        with self._conn.cursor() as cursor:
            cursor.executemany(statement, rows)
        if not self._replace:
            self._conn.commit()
        return [None] * len(records)

    def close(self) -> dict[str, Any]:
        self._conn.commit()
        self._conn.close()
        return {}

    def abort(self) -> None:
        self._conn.rollback()
        self._conn.close()

    @staticmethod
    def _sql(template: str, table: str) -> Any:
        from psycopg import sql

        return sql.SQL(template).format(sql.Identifier(*table.split(".")))


class DatabaseSink(TableSink):
    """The original framework's name for ``TableSink``."""


class DagsterMetadataSink(SinkFunction):
    """Counts records and keeps the first ``preview_rows`` (default 10) of ``fields`` (default all):
    the Dagster environment and ``to_asset()`` show them as the op's or asset's metadata (a table)."""

    preview_key: ClassVar[str] = "preview"

    def open(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._count = 0
        self._limit = int(self.config.get("preview_rows", 10))
        self._fields: list[str] | None = self.config.get("fields")

    def execute(self, data: Any) -> None:
        self._count += 1
        if len(self._rows) < self._limit:
            row = data if isinstance(data, dict) else {"value": data}
            self._rows.append({k: row.get(k) for k in self._fields} if self._fields else dict(row))

    def close(self) -> dict[str, Any]:
        return {"records": self._count, self.preview_key: self._rows}
