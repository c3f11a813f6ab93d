"""What a suite still has to validate: the rows written since its last pass, or the whole table.

Triggers on ``documents``, ``chunks`` and ``embeddings`` note every written row in ``quality_pending``
(migration 0017). A suite takes its notes inside its own transaction and keeps them taken only if its
validation passes: a failing suite fails again on the next run, rows written while it ran stay noted
for the next one (they are not visible to it, so they are not taken), and two runs of one suite take
turns. A suite that never passed, or last passed under other rules (its query or expectations: a new
chunk size, model, size limit), validates the whole table, as does one asked to.

Usage::

    with db.connect() as conn, conn.transaction():
        keys = take_changes(conn, "document_chunks", rules, whole_table=False)  # None: the whole table
        ...validate...
        record_pass(conn, "document_chunks", rules)  # or raise psycopg.Rollback() to keep the notes
"""

from __future__ import annotations

import hashlib

import psycopg


def rules_fingerprint(*parts: object) -> str:
    """The same rules give the same fingerprint in every process (reprs of queries and expectations)."""
    return hashlib.sha256("\x1f".join(repr(part) for part in parts).encode()).hexdigest()[:32]


def take_changes(conn: psycopg.Connection, suite: str, rules: str, *, whole_table: bool) -> list[str] | None:
    """The keys written since ``suite`` last passed under ``rules``, or None for the whole table.

    Call inside a transaction: the notes are gone only when it commits.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"sage-quality:{suite}",))
    row = conn.execute("SELECT rules FROM quality_validations WHERE suite = %s", (suite,)).fetchone()
    taken = conn.execute("DELETE FROM quality_pending WHERE suite = %s RETURNING key", (suite,)).fetchall()
    if whole_table or row is None or row[0] != rules:
        return None
    return sorted({key for (key,) in taken})


def record_pass(conn: psycopg.Connection, suite: str, rules: str) -> None:
    conn.execute(
        """INSERT INTO quality_validations (suite, rules) VALUES (%s, %s)
           ON CONFLICT (suite) DO UPDATE SET rules = excluded.rules, validated_at = now()""",
        (suite, rules),
    )
