"""The session store on PostgreSQL: batched turns keep order and counts; a bad turn fails alone."""

from __future__ import annotations

import asyncio

import pytest

from sage_platform.agent.session_store import FinishedRun, SessionStore, StoredMessage, Turn
from sage_platform.agent.turn_writer import TurnWriter
from sage_platform.config import Settings


def _turn(session: str, n: int, run_id: str) -> Turn:
    messages = [StoredMessage({"role": "user" if i % 2 == 0 else "assistant", "content": f"{session}-{i}"}, 5)
                for i in range(n)]  # fmt: skip
    return Turn(session, "u", messages, FinishedRun(run_id, "completed", [{"type": "stream_end"}], 0.0), "title")


@pytest.fixture
def store(settings: Settings) -> SessionStore:
    return SessionStore.from_settings(settings)


def test_one_batch_saves_new_and_existing_sessions_in_order(store: SessionStore) -> None:
    store.save_turn("a", "u", [StoredMessage({"role": "user", "content": "first"}, 3)],
                    FinishedRun("r0", "completed", [], 0.0))  # fmt: skip
    store.save_turns([_turn("a", 2, "r1"), _turn("b", 4, "r2"), _turn("c", 1, "r3")])
    assert [(m.seq, m.message["content"]) for m in store.history("a").messages] == [
        (1, "first"), (2, "a-0"), (3, "a-1")]  # fmt: skip
    assert [m.seq for m in store.history("b").messages] == [1, 2, 3, 4]
    assert {s["session_id"]: s["message_count"] for s in store.list_sessions()} == {"a": 3, "b": 4, "c": 1}
    assert store.last_run("b").run_id == "r2"  # type: ignore[union-attr]


def test_the_writer_groups_turns_and_isolates_a_failing_one(store: SessionStore) -> None:
    writer = TurnWriter(store)

    async def save_all() -> list[BaseException | None]:
        turns = [_turn(f"s{i}", 2, f"run{i}") for i in range(30)]
        turns.append(_turn("dup", 2, "run3"))  # the run id is taken: this turn cannot be saved
        return await asyncio.gather(*(writer.save(t) for t in turns), return_exceptions=True)

    results = asyncio.run(save_all())
    writer.close()
    assert results[:30] == [None] * 30
    assert isinstance(results[30], RuntimeError)
    assert len(store.list_sessions()) == 30
