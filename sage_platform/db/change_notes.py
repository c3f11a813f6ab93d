"""Reading what changed: the rows written since a reader last read, or the whole table.

Triggers on ``documents``, ``chunks`` and ``embeddings`` note every written row for each reader that
reads it (migration 0017). A reader takes its notes inside its own transaction, so they are gone only
if it commits: a data-quality suite that fails rolls back and keeps them (it fails again on the next
run); rows written while a reader ran are not visible to it, so their notes stay for the next read; two
reads by one reader take turns. A reader that never read, or last read under another basis (a suite's
rules, another index version), or has not read the whole table yet today (UTC), is told to read the
whole table: what was changed without a note (a trigger disabled, a table restored) is caught within a
day.

Usage::

    with db.connect() as conn, conn.transaction():
        taken = take_notes(conn, "document_chunks", basis)
        ...read the whole table, or the rows whose key is in taken.keys...
        record_read(conn, taken)  # or raise psycopg.Rollback() to keep the notes
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg


@dataclass(frozen=True)
class NotesTaken:
    reader: str
    basis: str  # the reader's basis and the day (UTC) it was taken on
    keys: list[str] | None  # None: read the whole table


def take_notes(conn: psycopg.Connection, reader: str, basis: str, *, whole_table: bool = False) -> NotesTaken:
    """The keys noted for ``reader`` since it last read under ``basis`` today, or the whole table.

    Call inside a transaction: the notes are gone only when it commits.
    """
    dated = f"{basis} {datetime.now(UTC).date().isoformat()}"
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"sage-change-notes:{reader}",))
    row = conn.execute("SELECT basis FROM change_readers WHERE reader = %s", (reader,)).fetchone()
    taken = conn.execute("DELETE FROM change_notes WHERE reader = %s RETURNING key", (reader,)).fetchall()
    if whole_table or row is None or row[0] != dated:
        return NotesTaken(reader, dated, None)
    return NotesTaken(reader, dated, sorted({key for (key,) in taken}))


def record_read(conn: psycopg.Connection, taken: NotesTaken) -> None:
    """The reader has read what ``taken`` told it to: the next read starts from here (on commit)."""
    conn.execute(
        """INSERT INTO change_readers (reader, basis) VALUES (%s, %s)
           ON CONFLICT (reader) DO UPDATE SET basis = excluded.basis, read_at = now()""",
        (taken.reader, taken.basis),
    )
