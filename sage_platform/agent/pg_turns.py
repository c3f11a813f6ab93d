"""Finished turns saved on PostgreSQL in one statement, one round trip: the agent server's hot path.

The batch travels as arrays, one row per session, message and run. Data-modifying CTEs count each
session's messages under its row lock (``INSERT … ON CONFLICT DO UPDATE``), number the new messages
after them and add the runs, all in the statement's one transaction. The saver keeps its own autocommit connection: no pool
checkout, no ping, no separate ``COMMIT``; a connection that went away (a restarted database) is
replaced once, and the batch is sent again only if the lost attempt did not commit it.

Usage::

    saver = PgTurnSaver("postgresql://sage@127.0.0.1:5432/sage")
    saver.save([Turn("s1", "alice", [StoredMessage({"role": "user", "content": "hi"}, 5)], run)], time.time())
    saver.close()
"""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg

from sage_platform.agent.turns import Turn, session_title

SAVE_TURNS = """
WITH batch AS (
    SELECT * FROM unnest(%(sessions)s::text[], %(users)s::text[], %(titles)s::text[], %(added)s::integer[])
        AS b(session_id, user_id, title, added)
),
counted AS (
    INSERT INTO agent_sessions AS s (session_id, user_id, title, summary_upto, message_count, created_at, updated_at)
    SELECT session_id, user_id, title, 0, added, %(now)s, %(now)s FROM batch
    ON CONFLICT (session_id) DO UPDATE
        SET message_count = s.message_count + excluded.message_count, updated_at = excluded.updated_at
    RETURNING s.session_id, s.message_count
),
saved_messages AS (
    INSERT INTO agent_messages (session_id, seq, role, message, tokens, created_at)
    SELECT m.session_id, c.message_count - b.added + m.position, m.role, m.message, m.tokens, %(now)s
    FROM unnest(%(m_sessions)s::text[], %(m_positions)s::integer[], %(m_roles)s::text[], %(m_messages)s::json[],
                %(m_tokens)s::integer[]) AS m(session_id, position, role, message, tokens)
    JOIN counted AS c USING (session_id)
    JOIN batch AS b USING (session_id)
)
INSERT INTO agent_runs (run_id, session_id, status, events, started_at, finished_at)
SELECT r.run_id, r.session_id, r.status, r.events, r.started_at, %(now)s
FROM unnest(%(runs)s::text[], %(r_sessions)s::text[], %(r_statuses)s::text[], %(r_events)s::json[],
            %(r_started)s::double precision[]) AS r(run_id, session_id, status, events, started_at)
"""
APPLICATION_NAME = "sage-turn-writer"  # its line in pg_stat_activity
ANY_SAVED = "SELECT 1 FROM agent_runs WHERE run_id = ANY(%s) LIMIT 1"


def batch_parameters(turns: list[Turn], now: float) -> dict[str, Any]:
    """The statement's parameters, as arrays: one row per session (the first turn's title names a new
    one), per message (numbered within its session's share of the batch) and per run. Messages and
    streams travel as JSON text and are never taken apart here: a ``\\u0000`` in them is kept as it is."""
    sessions: dict[str, list[Any]] = {}  # session -> [user, title, messages so far in this batch]
    m_sessions: list[str] = []
    m_positions: list[int] = []
    m_roles: list[str] = []
    m_messages: list[str] = []
    m_tokens: list[int] = []
    for turn in turns:
        entry = sessions.setdefault(turn.session_id, [turn.user_id, session_title(turn.title), 0])
        for m in turn.messages:
            entry[2] += 1
            m_sessions.append(turn.session_id)
            m_positions.append(entry[2])
            m_roles.append(str(m.message["role"]))
            m_messages.append(json.dumps(m.message))
            m_tokens.append(m.tokens)
    return {
        "sessions": list(sessions), "users": [e[0] for e in sessions.values()],
        "titles": [e[1] for e in sessions.values()], "added": [e[2] for e in sessions.values()],
        "m_sessions": m_sessions, "m_positions": m_positions, "m_roles": m_roles, "m_messages": m_messages,
        "m_tokens": m_tokens,
        "runs": [t.run.run_id for t in turns], "r_sessions": [t.session_id for t in turns],
        "r_statuses": [t.run.status for t in turns], "r_events": [json.dumps(t.run.events) for t in turns],
        "r_started": [t.run.started_at for t in turns], "now": now,
    }  # fmt: skip


class PgTurnSaver:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()  # one statement at a time on the kept connection

    def save(self, turns: list[Turn], now: float) -> None:
        """Every turn of ``turns`` saved, or none (raises)."""
        parameters = batch_parameters(turns, now)
        with self._lock:
            kept = self._conn is not None
            try:
                self._connection().execute(SAVE_TURNS, parameters)
                return
            except psycopg.OperationalError:
                self._drop()
                if not kept:
                    raise
            # The kept connection had gone: on a new one, unless the lost attempt committed the batch.
            try:
                conn = self._connection()
                if conn.execute(ANY_SAVED, ([t.run.run_id for t in turns],)).fetchone() is None:
                    conn.execute(SAVE_TURNS, parameters)
            except psycopg.OperationalError:
                self._drop()
                raise

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, application_name=APPLICATION_NAME)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
