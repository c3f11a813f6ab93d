"""Running agent streams: one per session at a time, followed live, replayed from any index.

A run publishes messages into its buffer; any number of followers read from their own offset.
The session stays locked until the run ends, however it ends (answer, error, interrupt or a
client that went away), so an interrupted session never hangs the next request.

Usage::

    run = await runs.start(session_id, lambda run: agent_loop(run))
    async for message in run.follow(0):
        ...
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Protocol

from sage_platform.agent.messages import new_id

logger = logging.getLogger(__name__)


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
        self.final: dict[str, Any] | None = None  # stream_end: published once the session is free again
        self.watched = False  # another process follows, interrupts or guides it: tell it when the run ends
        self.mirror: asyncio.Task[None] | None = None  # copies the stream for a follower in another process
        self.closing = False
        self.releasing = False  # its lease is being let go (with a coordinator)
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
        self.wake()

    def end_with(self, message: dict[str, Any]) -> None:
        """The last message: its followers get it after the run has let go of the session, so a client
        that sends its next request on seeing it never finds the session still busy."""
        self.final = message

    def finish(self) -> None:
        self.done = True
        self.wake()

    def wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_change(self) -> None:
        await self._changed.wait()

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


class Coordinator(Protocol):
    """Where sessions are leased across processes (``coordination.StreamCoordinator``: PostgreSQL)."""

    async def acquire(self, run: Run, max_per_user: int) -> None: ...

    async def release(self, run: Run) -> None: ...


class RunRegistry:
    """This process's runs. With a ``coordinator`` (the server's), a session's lease and its user's quota
    are held in the database, so they hold across every process serving the same sessions."""

    def __init__(self, max_active: int = 256, max_per_user: int = 16, coordinator: Coordinator | None = None) -> None:
        self.active: dict[str, Run] = {}
        self.max_active = max_active
        self.max_per_user = max_per_user
        self.per_user: dict[str, int] = {}
        self.coordinator = coordinator
        self._releasing: set[asyncio.Task[None]] = set()  # leases let go after a run ended abnormally

    async def start(
        self, session_id: str, body: Callable[[Run], Coroutine[Any, Any, None]], *, user_id: str = "default"
    ) -> Run:
        if len(self.active) >= self.max_active:
            raise ServerBusy(f"{len(self.active)} streams are running, the most this server takes; retry shortly")
        if session_id in self.active:
            raise SessionBusy(f"session {session_id} already has a running stream; interrupt it or resume it")
        if self.coordinator is None and self.per_user.get(user_id, 0) >= self.max_per_user:
            raise QuotaExceeded(
                f"user {user_id} already runs {self.max_per_user} streams, the most one user may "
                "(SAGE_MAX_STREAMS_PER_USER); wait for one to end"
            )
        run = Run(session_id, user_id)
        self.active[session_id] = run  # taken here first: a second local request is refused without a query
        self.per_user[user_id] = self.per_user.get(user_id, 0) + 1
        try:
            if self.coordinator is not None:
                await self.coordinator.acquire(run, self.max_per_user)
        except BaseException:
            self._forget(run)
            raise

        async def runner() -> None:
            try:
                await body(run)
            finally:
                if run.final is not None:
                    run.events.append(run.final)  # followers see it only after the release below
                if self.coordinator is not None:
                    await asyncio.shield(self._let_go(run))

        run.task = asyncio.create_task(runner(), name=f"agent-{session_id}")
        run.task.add_done_callback(lambda _: self._ended(run))
        return run

    def _ended(self, run: Run) -> None:
        """However the run's task ended (its work done, or cancelled during its release, or before it
        began), this process forgets it and its followers see it end; a lease still held is let go."""
        if self.coordinator is not None and not run.releasing:
            self._let_go(run)  # cancelled before it began: its lease goes too
        self._forget(run)
        run.finish()

    def _let_go(self, run: Run) -> asyncio.Task[None]:
        """The run's lease released, once, in a task of its own (kept until it ends)."""
        run.releasing = True
        release = asyncio.get_running_loop().create_task(self._release(run))
        self._releasing.add(release)
        release.add_done_callback(self._releasing.discard)
        return release

    async def _release(self, run: Run) -> None:
        assert self.coordinator is not None
        try:
            await self.coordinator.release(run)
        except Exception:  # the lease expires on its own; the run itself is saved
            logger.exception("could not release the lease of session %s", run.session_id)

    def _forget(self, run: Run) -> None:
        if self.active.get(run.session_id) is run:
            del self.active[run.session_id]
        left = self.per_user.get(run.user_id, 1) - 1
        if left:
            self.per_user[run.user_id] = left
        else:
            self.per_user.pop(run.user_id, None)

    def get(self, session_id: str) -> Run | None:
        return self.active.get(session_id)

    async def close(self) -> None:
        runs = list(self.active.values())
        for run in runs:
            run.cancel("server shutting down")
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
