"""Finished turns saved on PostgreSQL in one statement, one round trip: the agent server's hot path.

The batch travels as one JSON document. Data-modifying CTEs count each session's messages under its
row lock (``INSERT … ON CONFLICT DO UPDATE``), number the new messages after them and add the runs,
all in the statement's one transaction. The saver keeps its own autocommit connection: no pool
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
    SELECT t.value AS turn FROM json_array_elements(%(sessions)s::json) AS t
),
counted AS (
    INSERT INTO agent_sessions AS s (session_id, user_id, title, summary_upto, message_count, created_at, updated_at)
    SELECT turn->>'session_id', turn->>'user_id', turn->>'title', 0, json_array_length(turn->'messages'),
           %(now)s, %(now)s
    FROM batch
    ON CONFLICT (session_id) DO UPDATE
        SET message_count = s.message_count + excluded.message_count, updated_at = excluded.updated_at
    RETURNING s.session_id, s.message_count
),
saved_messages AS (
    INSERT INTO agent_messages (session_id, seq, role, message, tokens, created_at)
    SELECT c.session_id, c.message_count - json_array_length(b.turn->'messages') + m.position,
           m.value->>'role', (m.value->>'message')::json, (m.value->>'tokens')::integer, %(now)s
    FROM counted AS c
    JOIN batch AS b ON b.turn->>'session_id' = c.session_id
    CROSS JOIN LATERAL json_array_elements(b.turn->'messages') WITH ORDINALITY AS m(value, position)
)
INSERT INTO agent_runs (run_id, session_id, status, events, started_at, finished_at)
SELECT r.value->>'run_id', r.value->>'session_id', r.value->>'status', (r.value->>'events')::json,
       (r.value->>'started_at')::double precision, %(now)s
FROM json_array_elements(%(runs)s::json) AS r
"""
APPLICATION_NAME = "sage-turn-writer"  # its line in pg_stat_activity
ANY_SAVED = "SELECT 1 FROM agent_runs WHERE run_id = ANY(%s) LIMIT 1"


def batch_parameters(turns: list[Turn], now: float) -> dict[str, Any]:
    """The statement's parameters: one entry per session (its turns' messages in order; the first turn's
    title names a new session), and the runs. Each message and stream is JSON text inside the document,
    stored as it is: the database never takes it apart, so a ``\\u0000`` in it (which PostgreSQL cannot
    turn into text) is kept."""
    dumps = json.dumps
    sessions: dict[str, dict[str, Any]] = {}
    for turn in turns:
        entry = sessions.setdefault(
            turn.session_id,
            {
                "session_id": turn.session_id,
                "user_id": turn.user_id,
                "title": session_title(turn.title),
                "messages": [],
            },
        )
        entry["messages"] += [
            {"role": m.message["role"], "message": dumps(m.message), "tokens": m.tokens} for m in turn.messages
        ]
    runs = [
        {"run_id": t.run.run_id, "session_id": t.session_id, "status": t.run.status, "events": dumps(t.run.events),
         "started_at": t.run.started_at}
        for t in turns
    ]  # fmt: skip
    return {"sessions": dumps(list(sessions.values())), "runs": dumps(runs), "now": now}


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
