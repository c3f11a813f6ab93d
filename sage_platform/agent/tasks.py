"""Agent tasks: submitted over HTTP or the CLI, run by ``streaming_agent_job``, followed from Postgres.

A run owns a task once it claims it; only the owning run may write events or finish it. A retry
(after a crash) claims it again and replays the stream from the start, so the stored events never
hold duplicates or gaps, and a completed task is never run to completion twice.

``run_task`` runs one to its end (in ``streaming_agent_job``), storing every stream message as it is
published.

Usage::

    tasks = TaskStore(db)
    task = tasks.submit(StreamRequest(messages=[...]))
    attempt = tasks.claim(task["task_id"], run_id)       # None: already completed or failed
    outcome = run_task(platform, task["task_id"], run_id)  # TaskOutcome(status="completed", ...)
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from sage_platform.agent.requests import StreamRequest
from sage_platform.db import Database
from sage_platform.identity import DEFAULT_USER

if TYPE_CHECKING:
    from sage_platform.agent.runs import Run
    from sage_platform.platform import Platform

TERMINAL = ("completed", "failed")
_COLUMNS = "task_id, status, user_id, session_id, dagster_run_id, attempts, error, created_at, started_at, finished_at"


class TaskStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def submit(self, request: StreamRequest) -> dict[str, Any]:
        task_id = uuid.uuid4().hex
        session_id = request.session_id or uuid.uuid4().hex
        body = request.model_dump(mode="json", exclude_none=True) | {"session_id": session_id}
        if request.llm_model_config and request.llm_model_config.api_key:  # stored tasks keep no secrets
            raise ValueError("tasks cannot carry an llm_model_config.api_key: configure the key on the server")
        with self.db.pool.connection() as conn:
            conn.execute(
                "INSERT INTO agent_tasks (task_id, status, request, user_id, session_id) VALUES (%s, 'pending', %s, %s, %s)",
                (task_id, Jsonb(body), request.user_id or DEFAULT_USER, session_id),
            )
        return self.get(task_id)  # type: ignore[return-value]

    def get(self, task_id: str) -> dict[str, Any] | None:
        with self.db.pool.connection() as conn:
            cursor = conn.execute(f"SELECT {_COLUMNS} FROM agent_tasks WHERE task_id = %s", (task_id,))  # noqa: S608
            row = cursor.fetchone()
            names = [c.name for c in cursor.description or []]
        if row is None:
            return None
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in zip(names, row, strict=True)}

    def request_of(self, task_id: str) -> StreamRequest:
        with self.db.pool.connection() as conn:
            row = conn.execute("SELECT request FROM agent_tasks WHERE task_id = %s", (task_id,)).fetchone()
        if row is None:
            raise KeyError(f"no task {task_id}")
        return StreamRequest.model_validate(row[0])

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                "SELECT task_id, user_id, session_id FROM agent_tasks WHERE status = 'pending' ORDER BY created_at LIMIT %s",
                (limit,),
            ).fetchall()
        return [{"task_id": t, "user_id": u, "session_id": s} for t, u, s in rows]

    def claim(self, task_id: str, run_id: str) -> int | None:
        """Make ``run_id`` the owner and clear earlier attempts' events; None when already finished."""
        with self.db.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                """UPDATE agent_tasks SET status = 'running', dagster_run_id = %s, attempts = attempts + 1,
                          started_at = now(), error = NULL
                   WHERE task_id = %s AND status IN ('pending', 'running') RETURNING attempts""",
                (run_id, task_id),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM agent_events WHERE task_id = %s", (task_id,))
        return int(row[0])

    def append(self, task_id: str, run_id: str, seq: int, messages: list[dict[str, Any]]) -> bool:
        """Store a batch of stream messages as ``seq``, ``seq + 1``…, if ``run_id`` still owns the task."""
        with self.db.pool.connection() as conn:
            done = conn.execute(
                """INSERT INTO agent_events (task_id, seq, message)
                   SELECT %s, %s + m.n - 1, m.message FROM unnest(%s::jsonb[]) WITH ORDINALITY AS m(message, n)
                   WHERE EXISTS (
                       SELECT 1 FROM agent_tasks WHERE task_id = %s AND dagster_run_id = %s AND status = 'running')""",
                (task_id, seq, [Jsonb(m) for m in messages], task_id, run_id),
            )
        return done.rowcount == len(messages)

    def finish(self, task_id: str, run_id: str, status: str, error: str | None = None) -> bool:
        with self.db.pool.connection() as conn:
            done = conn.execute(
                """UPDATE agent_tasks SET status = %s, error = %s, finished_at = now()
                   WHERE task_id = %s AND dagster_run_id = %s AND status = 'running'""",
                (status, error, task_id, run_id),
            )
        return done.rowcount == 1

    def running(self) -> list[dict[str, Any]]:
        """Tasks some run has claimed and not finished: (task_id, dagster_run_id)."""
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                "SELECT task_id, dagster_run_id FROM agent_tasks WHERE status = 'running' ORDER BY started_at"
            ).fetchall()
        return [{"task_id": t, "dagster_run_id": r} for t, r in rows]

    def runs_of_sessions(self, session_ids: list[str]) -> dict[str, str]:
        """Each session's latest task run in Dagster (sessions with no task are left out)."""
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                """SELECT DISTINCT ON (session_id) session_id, dagster_run_id FROM agent_tasks
                   WHERE session_id = ANY(%s) AND dagster_run_id IS NOT NULL ORDER BY session_id, created_at DESC""",
                (session_ids,),
            ).fetchall()
        return {session: run for session, run in rows}

    def unfinished_for_session(self, session_id: str) -> dict[str, Any] | None:
        """The task (pending or running) of a session, with its user: where guidance for it goes."""
        with self.db.pool.connection() as conn:
            row = conn.execute(
                """SELECT task_id, user_id FROM agent_tasks WHERE session_id = %s AND status IN ('pending', 'running')
                   ORDER BY created_at DESC LIMIT 1""",
                (session_id,),
            ).fetchone()
        return {"task_id": row[0], "user_id": row[1]} if row else None

    def guide(self, task_id: str, content: str) -> None:
        with self.db.pool.connection() as conn:
            conn.execute("INSERT INTO agent_guidance (task_id, content) VALUES (%s, %s)", (task_id, content))

    def take_guidance(self, task_id: str) -> list[str]:
        """Guidance not taken yet, oldest first, marked taken in the same statement (no message twice)."""
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                """WITH taken AS (
                       UPDATE agent_guidance SET taken_at = now() WHERE task_id = %s AND taken_at IS NULL
                       RETURNING guidance_id, content)
                   SELECT content FROM taken ORDER BY guidance_id""",
                (task_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def events(self, task_id: str, offset: int = 0) -> list[dict[str, Any]]:
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                "SELECT message FROM agent_events WHERE task_id = %s AND seq >= %s ORDER BY seq", (task_id, offset)
            ).fetchall()
        return [row[0] for row in rows]


@dataclass
class TaskOutcome:
    status: str  # completed | failed | skipped (already finished: never run to completion twice)
    attempt: int | None
    events: int = 0
    error: str | None = None


def run_task(platform: Platform, task_id: str, run_id: str) -> TaskOutcome:
    """Claim the task for ``run_id`` and run it. A completed run is marked completed here; a failed
    one is left to the caller, which knows whether a retry comes."""
    tasks = TaskStore(platform.db)
    attempt = tasks.claim(task_id, run_id)
    if attempt is None:
        return TaskOutcome("skipped", None)
    outcome = asyncio.run(_run(platform, tasks, task_id, run_id))
    outcome.attempt = attempt
    if outcome.status == "completed":
        tasks.finish(task_id, run_id, "completed")
    return outcome


async def _run(platform: Platform, tasks: TaskStore, task_id: str, run_id: str) -> TaskOutcome:
    from sage_platform.agent.state import AgentState

    # The task store lets one attempt run at a time: a retry takes the session over from a dead attempt.
    state = AgentState.create(platform.settings, platform, successor_of=f"task:{task_id}:")
    await state.start()
    try:
        request = tasks.request_of(task_id)
        try:
            run = await state.agent.start(state.agent.prepare(request))
        except Exception as error:  # refused before it started: no model, unknown tools, too long
            return TaskOutcome("failed", None, 0, f"{type(error).__name__}: {error}")
        seq = 0
        errors: list[str] = []
        guidance = asyncio.create_task(_relay_guidance(tasks, task_id, run))
        try:
            async for batch in run.batches(0):  # a burst of tokens is one insert
                if not await asyncio.to_thread(tasks.append, task_id, run_id, seq, batch):
                    run.cancel("another run took the task over")
                    return TaskOutcome("failed", None, seq, "another run took the task over")
                seq += len(batch)
                errors += [str(message["content"]) for message in batch if message["type"] == "error"]
        finally:
            guidance.cancel()
        return TaskOutcome("failed" if errors else "completed", None, seq, "; ".join(errors) or None)
    finally:
        await state.close()


GUIDANCE_POLL_S = 0.5


async def _relay_guidance(tasks: TaskStore, task_id: str, run: Run) -> None:
    """Guidance posted to the server (another process) reaches this run: the table is polled while it runs."""
    while not run.done:
        for text in await asyncio.to_thread(tasks.take_guidance, task_id):
            run.inject(text)
        await asyncio.sleep(GUIDANCE_POLL_S)  # written by another process: no event to wait on
