"""Admission on arrival: past capacity, a new run gets ``503`` with ``Retry-After`` at once.

A saturated event loop serves everything late: requests wait in the socket's backlog, then in the
loop, and a limit checked deep inside the app answers only after that wait. This middleware sits
outermost and decides before any parsing, authentication or body read, on three signals:

- the runs this process already has (``SAGE_MAX_ACTIVE_STREAMS``);
- the event loop's lag, measured by a heartbeat every ``PERIOD_S``;
- how long the last runs took to start (the worker threads that prepare prompts and the lease's
  round trip, where a busy process queues work without its loop lagging).

Over ``SAGE_MAX_QUEUE_DELAY_MS`` for three measurements in a row the process is behind, and taking
more work would only make every stream slower.

Only requests that start runs are refused (``POST /api/stream`` and ``/api/chat``); reads, resumes,
interrupts and health checks always pass, so clients can still stop what runs.

Usage::

    limit = RunLimit(ceiling=256, target_s=0.05)
    app.add_middleware(Admission, running=lambda: len(runs.active), limit=limit, lag=LoopLag())
    ...
    limit.observe_start(seconds)        # a run admitted took this long to start
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

PERIOD_S = 0.01
MIN_RUNS = 2  # the run limit never closes the door entirely
FIRST_LIMIT = 32  # where the run limit starts; it grows as fast as runs start in time
CUT_EVERY_S = 0.1  # one congestion episode cuts the limit once, not once per late run
ADMITTED_AT = "sage_admitted_at"
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


class RunLimit:
    """How many runs at once keep a run's time to start (admission to model call) under the target.
    Each run that started in time raises it by 1/limit, each late one cuts it by a tenth (at most once
    per ``CUT_EVERY_S``): additive increase, multiplicative decrease, as TCP finds a link's capacity.
    Late starts come from work queued where the loop's lag does not show it (the threads that prepare
    prompts, the database pool)."""

    def __init__(self, ceiling: int, target_s: float) -> None:
        self.ceiling = ceiling
        self.target_s = target_s
        self.limit = float(min(ceiling, FIRST_LIMIT))
        self._slow_start = True  # until the first late start: +1 per run in time (doubling, as TCP's)
        self._cut_at = 0.0

    def observe_start(self, seconds: float) -> None:
        if seconds <= self.target_s:
            self.limit = min(float(self.ceiling), self.limit + (1 if self._slow_start else 1 / self.limit))
        elif (now := time.monotonic()) - self._cut_at >= CUT_EVERY_S:
            self._slow_start = False
            self.limit = max(float(MIN_RUNS), self.limit * 0.9)
            self._cut_at = now


class Admission:
    def __init__(self, app: Any, running: Callable[[], int], limit: RunLimit, lag: LoopLag) -> None:
        self.app = app
        self.running = running
        self.limit = limit
        self.lag = lag

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in STARTS_RUNS:
            self.lag.start()
            reason = self._full()
            if reason is not None:
                await _refuse(send, reason)
                return
            scope.setdefault("state", {})[ADMITTED_AT] = time.monotonic()  # the route reports the start
        await self.app(scope, receive, send)

    def _full(self) -> str | None:
        running, limit, target_ms = self.running(), self.limit, self.limit.target_s * 1000
        if running >= limit.ceiling:
            return f"{running} runs are in progress, the most this server process takes (SAGE_MAX_ACTIVE_STREAMS)"
        if self.lag.lag_s > limit.target_s:
            return (
                f"this server process is {self.lag.lag_s * 1000:.0f} ms behind its work, over "
                f"SAGE_MAX_QUEUE_DELAY_MS ({target_ms:.0f} ms)"
            )
        if running >= limit.limit:
            return (
                f"{running} runs are in progress; this server process takes more only while runs start within "
                f"SAGE_MAX_QUEUE_DELAY_MS ({target_ms:.0f} ms)"
            )
        return None


async def _refuse(send: Any, reason: str) -> None:
    body = json.dumps({"detail": f"server busy: {reason}; retry after 1 s"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", b"1")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
