"""The session store on PostgreSQL: batched turns keep order and counts; a bad turn fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from sage_platform.agent.pg_turns import APPLICATION_NAME
from sage_platform.agent.session_store import SessionStore, StoreUnavailable
from sage_platform.agent.turn_writer import TurnWriter
from sage_platform.agent.turns import FinishedRun, StoredMessage, Turn
from sage_platform.config import Settings


def _turn(session: str, n: int, run_id: str) -> Turn:
    messages = [StoredMessage({"role": "user" if i % 2 == 0 else "assistant", "content": f"{session}-{i}"}, 5)
                for i in range(n)]  # fmt: skip
    return Turn(session, "u", messages, FinishedRun(run_id, "completed", [{"type": "stream_end"}], 0.0), "title")


@pytest.fixture
def store(settings: Settings) -> Iterator[SessionStore]:
    store = SessionStore.from_settings(settings)
    yield store
    store.close()


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


def _cut_writer_connection(store: SessionStore) -> int:
    """The database ends the saver's kept connection, as a restart does; how many it ended."""
    conninfo = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_turn_saved_after_the_database_dropped_the_connection(store: SessionStore) -> None:
    store.save_turns([_turn("a", 2, "r1")])
    assert _cut_writer_connection(store) == 1
    store.save_turns([_turn("a", 2, "r2")])  # on a new connection
    assert [(m.seq, m.message["content"]) for m in store.history("a").messages] == [
        (1, "a-0"), (2, "a-1"), (3, "a-0"), (4, "a-1")]  # fmt: skip


def test_a_batch_the_lost_connection_had_committed_is_not_saved_twice(store: SessionStore) -> None:
    turns = [_turn("a", 2, "r1"), _turn("b", 1, "r2")]
    store.save_turns(turns)
    assert _cut_writer_connection(store) == 1
    store.save_turns(turns)  # as a retry after a lost reply: the runs are there, so nothing is added
    assert [m.seq for m in store.history("a").messages] == [1, 2]
    assert {s["session_id"]: s["message_count"] for s in store.list_sessions()} == {"a": 2, "b": 1}
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.save_turns(turns)  # on a live connection, a run saved twice is an error, not a silent no-op


def test_a_database_that_is_gone_is_reported_by_name(settings: Settings) -> None:
    store = SessionStore.from_settings(settings)
    store.save_turns([_turn("a", 1, "r1")])
    store._pg_turns._conninfo = "postgresql://sage@127.0.0.1:1/nowhere"  # type: ignore[union-attr]
    _cut_writer_connection(store)
    with pytest.raises(StoreUnavailable, match="the session database .* cannot be reached"):
        store.save_turns([_turn("a", 1, "r2")])
    store.close()


def test_a_nul_in_the_question_is_saved_and_left_out_of_the_title(store: SessionStore) -> None:
    question = {"role": "user", "content": "before\x00after"}
    events = [{"type": "final_answer", "content": "an\x00swer"}]
    store.save_turns([Turn("a", "u", [StoredMessage(question, 3)], FinishedRun("r1", "completed", events, 0.0),
                           "before\x00after")])  # fmt: skip
    assert [m.message for m in store.history("a").messages] == [question]
    assert store.last_run("a").events == events  # type: ignore[union-attr]
    assert [s["title"] for s in store.list_sessions()] == ["beforeafter"]
    store.rename("a", "re\x00named")
    assert [s["title"] for s in store.list_sessions()] == ["renamed"]
