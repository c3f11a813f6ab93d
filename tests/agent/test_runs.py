"""A run always ends for its followers and lets go of its session, however its task ends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import psycopg

from sage_platform.agent.coordination import StreamCoordinator
from sage_platform.agent.runs import Run, RunRegistry


def test_a_run_cancelled_before_it_began_ends_and_frees_its_session() -> None:
    began: list[Run] = []

    async def scenario() -> None:
        registry = RunRegistry()

        async def body(run: Run) -> None:
            began.append(run)

        run = await registry.start("s1", body)
        assert run.cancel("client disconnected")  # before its task took a first step
        assert run.task is not None
        await asyncio.wait([run.task])
        followed = asyncio.wait_for(_messages(run), timeout=10)  # a follower is not left waiting
        assert await followed == []
        assert run.done and registry.get("s1") is None and registry.per_user == {}

    asyncio.run(scenario())
    assert began == []


def test_a_run_cancelled_while_letting_go_of_its_lease_still_ends_and_the_lease_goes(
    migrated_database_url: str,
) -> None:
    async def scenario() -> None:
        coordinator = StreamCoordinator(migrated_database_url, lease_seconds=30)
        await coordinator.start()
        registry = RunRegistry(coordinator=coordinator)
        answered = asyncio.Event()

        async def body(run: Run) -> None:
            await answered.wait()

        run = await registry.start("s1", body, user_id="u")
        async with await psycopg.AsyncConnection.connect(migrated_database_url) as blocker:
            # Another transaction holds the lease row: the release's DELETE waits for it.
            await blocker.execute("SELECT 1 FROM agent_stream_leases WHERE run_id = %s FOR UPDATE", (run.run_id,))
            answered.set()
            await _until_async(lambda: _waiting_deletes(migrated_database_url), 1)  # the release is under way
            assert run.task is not None and run.task.cancel()  # as a renewal that missed the lease would
            await asyncio.wait([run.task])
            assert run.done and registry.get("s1") is None  # followers see the end; the session is free here
            await blocker.rollback()
        await _until_async(lambda: coordinator.lease_of("s1"), None)  # the release went on, and the lease went
        await coordinator.close()

    asyncio.run(scenario())


def test_a_run_ending_while_its_stream_is_being_copied_for_another_process_lets_go_of_its_lease(
    migrated_database_url: str,
) -> None:
    """The copy of the stream for a follower in another process writes what came in during its last write,
    then ends: the run's lease goes and the follower gets the whole stream."""

    async def scenario() -> None:
        holder = StreamCoordinator(migrated_database_url, lease_seconds=30)
        other = StreamCoordinator(migrated_database_url, lease_seconds=30)
        await holder.start()
        await other.start()
        registry = RunRegistry(coordinator=holder)
        second, answered = asyncio.Event(), asyncio.Event()

        async def body(run: Run) -> None:
            run.publish({"type": "assistant_text", "content": "one"})
            await second.wait()
            run.publish({"type": "assistant_text", "content": "two"})
            await answered.wait()
            run.end_with({"type": "stream_end", "session_id": "s1"})

        run = await registry.start("s1", body, user_id="u")
        lease = await other.lease_of("s1")
        assert lease is not None
        lines = other.follow(lease, 0)
        assert len(await anext(lines)) == 1  # the copy is under way
        async with await psycopg.AsyncConnection.connect(migrated_database_url) as blocker:
            # Another transaction writes the second line's row first: the copy's write of it waits.
            await blocker.execute(
                "INSERT INTO agent_stream_events (run_id, seq, line) VALUES (%s, 1, 'x')", (run.run_id,)
            )
            second.set()
            await _until_async(lambda: _waiting(migrated_database_url, "INSERT INTO agent_stream_events%"), 1)
            answered.set()  # the run ends, its stream_end comes after the write in flight
            await _until_async(lambda: _is(run.closing), True)  # its release waits for the copy
            await blocker.rollback()
        await _until_async(lambda: holder.lease_of("s1"), None)  # the copy ended and the lease went
        rest = [line async for batch in lines for line in batch]
        assert [json.loads(line)["type"] for line in rest] == ["assistant_text", "stream_end"]
        await other.close()
        await holder.close()

    asyncio.run(scenario())


async def _is(value: object) -> object:
    return value


async def _waiting_deletes(url: str) -> int:
    return await _waiting(url, "DELETE FROM agent_stream_leases%")


async def _waiting(url: str, statement: str) -> int:
    """How many sessions wait on a lock while running a statement that matches ``statement`` (LIKE)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s", (statement,)
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _messages(run: Run) -> list[dict[str, object]]:
    return [m async for m in run.follow()]


async def _until_async(read: Callable[[], Awaitable[object]], wanted: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while await read() != wanted:
        assert time.monotonic() < deadline, f"never {wanted!r}"
        await asyncio.sleep(0.01)
