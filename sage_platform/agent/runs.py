"""Running agent streams: one per session at a time, followed live, replayed from any index.

A run publishes messages into its buffer; any number of followers read from their own offset.
The session stays locked until the run ends, however it ends (answer, error, interrupt or a
client that went away), so an interrupted session never hangs the next request.

Usage::

    run = runs.start(session_id, lambda run: agent_loop(run))
    async for message in run.follow(0):
        ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sage_platform.agent.messages import new_id


class SessionBusy(RuntimeError):
    pass


class ServerBusy(RuntimeError):
    pass


class QuotaExceeded(RuntimeError):
    """The caller already runs as many streams as one user may."""


class Run:
    def __init__(self, session_id: str, user_id: str = "default") -> None:
        self.run_id = new_id()
        self.session_id = session_id
        self.user_id = user_id  # whose run: only they (or an admin) may resume or interrupt it
        self.started_at = time.time()
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.cancel_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._injected: list[str] = []

    def inject(self, text: str) -> bool:
        """Guidance from the user mid-run: the loop takes it at its next step. False once the run is over."""
        if self.done:
            return False
        self._injected.append(text)
        return True

    @property
    def has_injected(self) -> bool:
        return bool(self._injected)

    def take_injected(self) -> list[str]:
        taken, self._injected = self._injected, []
        return taken

    def publish(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, start: int = 0) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches(start):
            for message in batch:
                yield message

    async def batches(self, start: int = 0) -> AsyncIterator[list[dict[str, Any]]]:
        """Every message published since the last batch, together: one write for a burst of tokens."""
        index = max(0, start)
        while True:
            if index < len(self.events):
                batch = self.events[index:]
                index += len(batch)
                yield batch
                continue
            if self.done:
                return
            await self._changed.wait()

    def cancel(self, reason: str) -> bool:
        if self.done or self.task is None or self.task.done():
            return False
        self.cancel_reason = reason
        self.task.cancel()
        return True


class RunRegistry:
    def __init__(self, max_active: int = 256, max_per_user: int = 16) -> None:
        self.active: dict[str, Run] = {}
        self.max_active = max_active
        self.max_per_user = max_per_user
        self.per_user: dict[str, int] = {}

    def start(
        self, session_id: str, body: Callable[[Run], Coroutine[Any, Any, None]], *, user_id: str = "default"
    ) -> Run:
        if len(self.active) >= self.max_active:
            raise ServerBusy(f"{len(self.active)} streams are running, the most this server takes; retry shortly")
        if session_id in self.active:
            raise SessionBusy(f"session {session_id} already has a running stream; interrupt it or resume it")
        if self.per_user.get(user_id, 0) >= self.max_per_user:
            raise QuotaExceeded(
                f"user {user_id} already runs {self.max_per_user} streams, the most one user may "
                "(SAGE_MAX_STREAMS_PER_USER); wait for one to end"
            )
        run = Run(session_id, user_id)
        self.active[session_id] = run
        self.per_user[user_id] = self.per_user.get(user_id, 0) + 1

        async def runner() -> None:
            try:
                await body(run)
            finally:
                self.active.pop(session_id, None)
                left = self.per_user.get(user_id, 1) - 1
                if left:
                    self.per_user[user_id] = left
                else:
                    self.per_user.pop(user_id, None)
                run.finish()

        run.task = asyncio.create_task(runner(), name=f"agent-{session_id}")
        return run

    def get(self, session_id: str) -> Run | None:
        return self.active.get(session_id)

    async def close(self) -> None:
        runs = list(self.active.values())
        for run in runs:
            run.cancel("server shutting down")
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
