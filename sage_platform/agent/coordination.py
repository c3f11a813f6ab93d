"""Agent streams across server processes, through the platform's PostgreSQL.

Any number of ``sage serve`` processes (workers of one server, or replicas behind a load balancer)
share one database, and any of them can take any request:

- **one stream per session**: a lease row per running session, taken in one round trip with the
  user's quota (``sage_take_stream_lease``: an advisory lock per user makes the count exact), renewed by
  its holder, expiring if the holder dies;
- **interrupt and guidance** reach the holder through ``NOTIFY sage_runs``;
- **live resume** from another process: it asks the holder (``NOTIFY``) to mirror the run's messages
  into ``agent_stream_events``, reads them by sequence number and wakes on each ``NOTIFY``, so nothing is
  missed or repeated; a holder that dies ends the follower's stream with an error line.

Usage::

    coordinator = StreamCoordinator(db_url, lease_seconds=15)
    await coordinator.start()
    await coordinator.acquire(run, max_per_user=16)     # SessionBusy / QuotaExceeded
    ...
    await coordinator.release(run)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from sage_platform.agent.messages import encode
from sage_platform.agent.runs import QuotaExceeded, Run, ServerBusy, SessionBusy

logger = logging.getLogger(__name__)
CHANNEL = "sage_runs"
MAX_NOTIFY_TEXT = 7900  # PostgreSQL's NOTIFY payload is under 8000 bytes
MIRROR_BATCH_S = 0.02  # a follower in another process gets a burst of tokens as one write
FOLLOW_CHECK_S = 1.0  # how often a waiting follower checks that the holder is alive
EVENTS_KEPT_S = 600  # a mirrored stream stays readable this long after its run ends


class GuidanceTooLong(ValueError):
    pass


@dataclass(frozen=True)
class Lease:
    session_id: str
    run_id: str
    user_id: str
    holder: str


_LIVE = sql.SQL(
    "SELECT session_id, run_id, user_id, holder FROM agent_stream_leases "
    "WHERE {column} = %s AND expires_at > clock_timestamp()"
)


def ends_stream(line: str) -> bool:
    """Whether an NDJSON line of a stream is its ``stream_end`` (``encode`` writes ``type`` first)."""
    return line.startswith('{"type":"stream_end"')


class StreamCoordinator:
    def __init__(
        self, url: str, *, lease_seconds: float = 15.0, max_total: int = 0, successor_of: str | None = None
    ) -> None:
        """``max_total``: streams at once across every process (0: no such cap); ``successor_of``: a name
        (an agent task's) whose earlier holders this one replaces, live or not: a task's retry takes its
        session over from the attempt it supersedes."""
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_total = max_total
        self.holder = f"{successor_of or ''}{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self._take_over = None if successor_of is None else successor_of.replace("%", "").replace("_", r"\_") + "%"
        self.runs: dict[str, Run] = {}  # this process's leased runs, by run id
        self._pool = AsyncConnectionPool(url, min_size=1, max_size=8, kwargs={"autocommit": True}, open=False,
                                         configure=_configure, name="sage-streams")  # fmt: skip
        self._wakers: dict[str, set[asyncio.Event]] = {}  # followers and interrupters waiting, by run id
        self._ended: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._pool.open(wait=True)
        listening = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._listen(listening), name="sage-streams-listen"),
                       asyncio.create_task(self._renew(), name="sage-streams-renew")]  # fmt: skip
        await listening  # a NOTIFY sent after start() returns is heard

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.close()

    # -- the holder's side ------------------------------------------------------------------------

    async def acquire(self, run: Run, max_per_user: int) -> None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT sage_take_stream_lease(%s, %s, %s, %s, %s, %s, %s, %s)",
                (run.session_id, run.run_id, run.user_id, self.holder, self.lease_seconds, max_per_user,
                 self._take_over, self.max_total),
            )  # fmt: skip
            outcome = (await cursor.fetchone() or ("busy",))[0]
        if outcome == "taken":
            self.runs[run.run_id] = run
        elif outcome == "busy":
            raise SessionBusy(f"session {run.session_id} already has a running stream; interrupt it or resume it")
        elif outcome == "full":
            raise ServerBusy(
                f"{self.max_total} streams are running across the servers, the most allowed "
                "(SAGE_MAX_STREAMS_TOTAL); retry shortly"
            )
        else:
            raise QuotaExceeded(
                f"user {run.user_id} already runs {max_per_user} streams, the most one user may "
                "(SAGE_MAX_STREAMS_PER_USER); wait for one to end"
            )

    async def release(self, run: Run) -> None:
        """The run's messages are all mirrored (if followed), then the lease goes; stream_end follows."""
        self.runs.pop(run.run_id, None)  # first: a renewal that misses its lease from now on leaves it alone
        if run.mirror is not None:
            run.closing = True
            run.wake()
            await asyncio.gather(run.mirror, return_exceptions=True)
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM agent_stream_leases WHERE run_id = %s", (run.run_id,))
            if run.watched:
                await self._notify(conn, f"e {run.run_id}")

    async def _mirror(self, run: Run) -> None:
        written = 0
        while True:
            upto = len(run.events)
            if upto > written:
                rows = [
                    (run.run_id, seq, encode(m).decode()) for seq, m in enumerate(run.events[written:upto], written)
                ]
                async with self._pool.connection() as conn, conn.transaction():
                    async with conn.cursor() as cursor:
                        await cursor.executemany(
                            "INSERT INTO agent_stream_events (run_id, seq, line) VALUES (%s, %s, %s) "
                            "ON CONFLICT DO NOTHING",
                            rows,
                        )
                    await self._notify(conn, f"p {run.run_id} {upto}")
                written = upto
                continue  # what came in during the write (the release's wake among it) goes next
            if run.closing:
                return
            await run.wait_change()
            await asyncio.sleep(MIRROR_BATCH_S)

    # -- any process -------------------------------------------------------------------------------

    async def lease_of(self, session_id: str) -> Lease | None:
        return await self._lease("session_id", session_id)

    async def running(self, session_ids: list[str]) -> set[str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT session_id FROM agent_stream_leases WHERE session_id = ANY(%s) AND expires_at > "
                "clock_timestamp()",
                (session_ids,),
            )
            return {row[0] for row in await cursor.fetchall()}

    async def interrupt(self, lease: Lease, wait_s: float = 5.0) -> bool:
        """Ask the holder to stop the run; True once its lease is released (the run saved and ended)."""
        with self._watching(lease.run_id) as waker:
            await self._send(f"i {lease.run_id}")
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if lease.run_id in self._ended or await self._lease("run_id", lease.run_id) is None:
                    return True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), min(FOLLOW_CHECK_S, deadline - time.monotonic()))
                waker.clear()
        return False

    async def guide(self, lease: Lease, text: str) -> None:
        if len(text.encode()) > MAX_NOTIFY_TEXT:
            raise GuidanceTooLong(
                f"this stream runs in another server process; guidance to it is limited to {MAX_NOTIFY_TEXT} bytes"
            )
        await self._send(f"g {lease.run_id} {text}")

    async def follow(self, lease: Lease, start: int) -> AsyncIterator[list[str]]:
        """The run's NDJSON lines from ``start`` as the holder writes them; ends after ``stream_end``.
        Ends with nothing more if the run ended unfollowed (the caller replays the stored run)."""
        with self._watching(lease.run_id) as waker:
            await self._send(f"f {lease.run_id}")
            index = start
            while True:
                waker.clear()
                lines = await self._lines(lease.run_id, index)
                if lines:
                    index += len(lines)
                    yield lines
                    if ends_stream(lines[-1]):
                        return
                    continue
                if lease.run_id in self._ended:
                    return
                try:
                    await asyncio.wait_for(waker.wait(), FOLLOW_CHECK_S)
                except TimeoutError:
                    if await self._lease("run_id", lease.run_id) is None and not await self._lines(lease.run_id, index):
                        return

    # -- internals ---------------------------------------------------------------------------------

    async def _lines(self, run_id: str, start: int) -> list[str]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT line FROM agent_stream_events WHERE run_id = %s AND seq >= %s ORDER BY seq", (run_id, start)
            )
            return [row[0] for row in await cursor.fetchall()]

    async def _lease(self, column: str, value: str) -> Lease | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(_LIVE.format(column=sql.Identifier(column)), (value,))
            row = await cursor.fetchone()
        return Lease(*row) if row else None

    @contextlib.contextmanager
    def _watching(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set on every notification about ``run_id`` (progress or end) while the block runs."""
        waker = asyncio.Event()
        self._wakers.setdefault(run_id, set()).add(waker)
        try:
            yield waker
        finally:
            waiting = self._wakers.get(run_id, set())
            waiting.discard(waker)
            if not waiting:
                self._wakers.pop(run_id, None)
                self._ended.discard(run_id)

    async def _send(self, payload: str) -> None:
        async with self._pool.connection() as conn:
            await self._notify(conn, payload)

    @staticmethod
    async def _notify(conn: psycopg.AsyncConnection[Any], payload: str) -> None:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def _heard(self, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        run_id, _, text = rest.partition(" ")
        if kind in ("p", "e"):
            waiting = self._wakers.get(run_id, ())
            if kind == "e" and waiting:
                self._ended.add(run_id)  # forgotten when the last one waiting stops (_watching)
            for waker in waiting:
                waker.set()
            return
        run = self.runs.get(run_id)
        if run is None:
            return
        run.watched = True
        if kind == "i":
            run.cancel("interrupted by request")
        elif kind == "g":
            run.inject(text)
        elif kind == "f" and run.mirror is None:
            run.mirror = asyncio.create_task(self._mirror(run), name=f"sage-mirror-{run_id}")

    async def _listen(self, listening: asyncio.Future[None]) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not listening.done():
                        listening.set_result(None)
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except psycopg.OperationalError as error:
                logger.warning("stream notifications lost (%s); reconnecting", error)
                await asyncio.sleep(1.0)  # the database is restarting: retry, not spin

    async def _renew(self) -> None:
        """Keep this process's leases alive; a run whose lease is gone (expired while the process stalled,
        or the database lost it) is stopped: another process may already run its session."""
        swept = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_seconds / 3)  # the heartbeat's own period
            try:
                held = {run_id for run_id, run in self.runs.items() if run.task is not None}
                async with self._pool.connection() as conn:
                    cursor = await conn.execute(
                        "UPDATE agent_stream_leases SET expires_at = clock_timestamp() + make_interval(secs => %s) "
                        "WHERE holder = %s RETURNING run_id",
                        (self.lease_seconds, self.holder),
                    )
                    renewed = {row[0] for row in await cursor.fetchall()}
                    if time.monotonic() - swept > EVENTS_KEPT_S / 10:
                        swept = time.monotonic()
                        await conn.execute(
                            "DELETE FROM agent_stream_events WHERE created_at < clock_timestamp() - "
                            "make_interval(secs => %s) AND run_id NOT IN (SELECT run_id FROM agent_stream_leases)",
                            (EVENTS_KEPT_S,),
                        )
            except psycopg.Error as error:
                logger.warning("could not renew stream leases: %s", error)
                continue
            for run_id in held - renewed:
                if (run := self.runs.get(run_id)) is not None:
                    run.cancel("this server lost the session's lease (stalled or cut off from the database)")


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # A lease lost in a database crash is harmless (its holder must retake it): no flush per commit.
    await conn.execute("SET synchronous_commit = off")
