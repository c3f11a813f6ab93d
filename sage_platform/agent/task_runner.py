"""Run one agent task to its end, storing every stream message as it is published.

Usage::

    outcome = run_task(platform, task_id, run_id)    # TaskOutcome(status="completed", ...)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sage_platform.agent.tasks import TaskStore


@dataclass
class TaskOutcome:
    status: str  # completed | failed | skipped (already finished: never run to completion twice)
    attempt: int | None
    events: int = 0
    error: str | None = None


def run_task(platform: Any, task_id: str, run_id: str) -> TaskOutcome:
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


async def _run(platform: Any, tasks: TaskStore, task_id: str, run_id: str) -> TaskOutcome:
    from sage_platform.agent.state import AgentState

    state = AgentState.create(platform.settings, platform)
    await state.start()
    try:
        request = tasks.request_of(task_id)
        try:
            run = state.agent.start(state.agent.prepare(request))
        except Exception as error:  # refused before it started: no model, unknown tools, too long
            return TaskOutcome("failed", None, 0, f"{type(error).__name__}: {error}")
        seq = 0
        errors: list[str] = []
        async for batch in run.batches(0):  # a burst of tokens is one insert
            if not await asyncio.to_thread(tasks.append, task_id, run_id, seq, batch):
                run.cancel("another run took the task over")
                return TaskOutcome("failed", None, seq, "another run took the task over")
            seq += len(batch)
            errors += [str(message["content"]) for message in batch if message["type"] == "error"]
        return TaskOutcome("failed" if errors else "completed", None, seq, "; ".join(errors) or None)
    finally:
        await state.close()
