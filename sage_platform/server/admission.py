"""Admission on arrival: past capacity, a new run gets ``503`` with ``Retry-After`` at once.

A saturated event loop serves everything late: requests wait in the socket's backlog, then in the
loop, and a limit checked deep inside the app answers only after that wait. This middleware sits
outermost and decides before any parsing, authentication or body read, on two signals:

- the runs this process already has (``SAGE_MAX_ACTIVE_STREAMS``), and
- the event loop's lag, measured by a heartbeat every ``PERIOD_S``: over ``SAGE_MAX_LOOP_LAG_MS`` the
  loop is behind, so taking more work would only make every stream slower.

Only requests that start runs are refused (``POST /api/stream`` and ``/api/chat``); reads, resumes,
interrupts and health checks always pass, so clients can still stop what runs.

Usage::

    app.add_middleware(Admission, running=lambda: len(runs.active), max_running=256, max_lag_ms=50)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

PERIOD_S = 0.01
STARTS_RUNS = frozenset({"/api/stream", "/api/chat"})


class LoopLag:
    """How late the event loop wakes a task that asked to sleep ``PERIOD_S``: the time any new
    request would wait behind the work already queued. The least of the last ``BEATS`` beats, so one
    long step (a first import, a collection) is not taken for overload: only lag that persists is."""

    BEATS = 3

    def __init__(self) -> None:
        self.lag_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self._beat_done = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._beat(), name="sage-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _beat(self) -> None:
        recent = [0.0] * self.BEATS
        beat = 0
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(PERIOD_S)  # the heartbeat itself: its lateness is the measurement
            recent[beat % len(recent)] = max(0.0, time.perf_counter() - asked - PERIOD_S)
            beat += 1
            self.lag_s = min(recent)
            done, self._beat_done = self._beat_done, asyncio.Event()
            done.set()

    async def next_beat(self) -> float:
        """The lag once the next heartbeat has been measured."""
        self.start()
        await self._beat_done.wait()
        return self.lag_s


class Admission:
    def __init__(
        self,
        app: Any,
        running: Callable[[], int],
        max_running: int,
        max_lag_ms: float,
        lag: LoopLag,
    ) -> None:
        self.app = app
        self.running = running
        self.max_running = max_running
        self.max_lag_s = max_lag_ms / 1000
        self.lag = lag
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in STARTS_RUNS:
            self.lag.start()
            reason = self._full()
            if reason is not None:
                self.refused += 1
                await _refuse(send, reason)
                return
        await self.app(scope, receive, send)

    def _full(self) -> str | None:
        if (running := self.running()) >= self.max_running:
            return f"{running} runs are in progress, the most this server process takes (SAGE_MAX_ACTIVE_STREAMS)"
        if self.lag.lag_s > self.max_lag_s:
            return (
                f"this server process is {self.lag.lag_s * 1000:.0f} ms behind its work, over "
                f"SAGE_MAX_LOOP_LAG_MS ({self.max_lag_s * 1000:.0f} ms)"
            )
        return None


async def _refuse(send: Any, reason: str) -> None:
    body = json.dumps({"detail": f"server busy: {reason}; retry after 1 s"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", b"1")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
