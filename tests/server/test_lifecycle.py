"""Disconnects, interrupts, resume and the one-stream-per-session lock."""

from __future__ import annotations

import json
import time

import psutil
import requests

from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient, reading, types_of


def _wait_idle_session(server: AgentClient, session: str, within: float = 10.0) -> float:
    """Seconds until the session's lock is released (polled, with a deadline)."""
    began = time.monotonic()
    while session in server.state.agent.runs.active:
        assert time.monotonic() - began < within, "the session lock was never released"
        time.sleep(0.01)
    return time.monotonic() - began


def _cpu_share(seconds: float) -> float:
    """CPU time this process used over a window, as a share of one core."""
    process = psutil.Process()
    before, began = process.cpu_times(), time.monotonic()
    time.sleep(seconds)  # the measuring window itself, not a stand-in for synchronisation
    after = process.cpu_times()
    return (after.user + after.system - before.user - before.system) / (time.monotonic() - began)


def test_client_disconnect_releases_the_lock_and_cpu_returns_to_idle(server: AgentClient, llm: ChatStub) -> None:
    response = server.post_stream("[[hold]] tell me a long story")
    with reading(response) as messages:
        first = next(messages)
        assert first["type"] == "assistant_text"
        session = first["session_id"]
        assert llm.holding.wait(10)
    # The connection is closed: the run must stop although the LLM still holds its stream open.
    released_after = _wait_idle_session(server, session)
    assert released_after < 5
    shares = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        shares.append(_cpu_share(0.5))
        if shares[-1] < 0.15:
            break
    assert shares[-1] < 0.15, f"CPU share of one core after disconnect: {shares}"
    after = server.stream("are you there?", session_id=session)  # no 409, no hang
    assert after[-3]["type"] == "final_answer"
    run = server.state.store.last_run(session)
    assert run.status == "completed"
    runs_status = [r for r in _runs(server, session)]
    assert runs_status.count("interrupted") == 1


def _runs(server: AgentClient, session: str) -> list[str]:
    from sqlalchemy import select

    from sage_platform.agent.session_store import runs

    with server.state.store.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(runs.c.status).where(runs.c.session_id == session))]


def test_interrupt_ends_the_stream_with_an_error_and_stream_end(server: AgentClient, llm: ChatStub) -> None:
    response = server.post_stream("[[hold]] go on forever")
    with reading(response) as messages:
        session = next(messages)["session_id"]
        assert llm.holding.wait(10)
        answer = server.post(f"/api/sessions/{session}/interrupt").json()
        assert answer == {"session_id": session, "interrupted": True}
        rest = list(messages)
    assert types_of(rest)[-2:] == ["error", "stream_end"]
    assert "interrupted by request" in rest[-2]["content"]
    assert server.post(f"/api/sessions/{session}/interrupt").status_code == 404  # nothing runs any more
    history = server.get(f"/api/sessions/{session}/messages").json()["messages"]
    assert [m["role"] for m in history] == ["user"]  # the question is kept, no half answer is stored


def test_resume_replays_a_running_stream_then_a_finished_one(server: AgentClient, llm: ChatStub) -> None:
    response = server.post_stream("[[hold]] one two three")
    with reading(response) as messages:
        first = next(messages)
        session = first["session_id"]
        assert llm.holding.wait(10)
        follower = requests.get(
            f"{server.url}/api/stream/resume/{session}", params={"last_index": 1}, stream=True, timeout=30
        )
        llm.release()
        original = [first, *messages]
    resumed = [json.loads(line) for line in follower.iter_lines() if line]
    assert resumed == original[1:]
    replay = requests.get(f"{server.url}/api/stream/resume/{session}", params={"last_index": 3}, timeout=30)
    assert [json.loads(line) for line in replay.text.splitlines()] == original[3:]
    assert requests.get(f"{server.url}/api/stream/resume/nobody", timeout=30).status_code == 404


def test_a_second_stream_on_a_busy_session_gets_409(server: AgentClient, llm: ChatStub) -> None:
    response = server.post_stream("[[hold]] busy")
    with reading(response) as messages:
        session = next(messages)["session_id"]
        second = server.post_stream("me too", session_id=session)
        assert second.status_code == 409 and "already has a running stream" in second.json()["detail"]
        llm.release()
        assert list(messages)[-1]["type"] == "stream_end"


def test_past_max_active_streams_new_runs_get_503_with_retry_after(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(max_active_streams=1)
    response = server.post_stream("[[hold]] first")
    with reading(response) as messages:
        next(messages)
        busy = server.post_stream("second")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert "1 runs are in progress" in busy.json()["detail"] and "SAGE_MAX_ACTIVE_STREAMS" in busy.json()["detail"]
        llm.release()
        assert list(messages)[-1]["type"] == "stream_end"
    _wait_idle_session(server, response.headers["X-Session-Id"])
    assert server.stream("third")[-1]["type"] == "stream_end"


def test_interrupt_answers_once_the_session_is_free_for_the_next_message(server: AgentClient, llm: ChatStub) -> None:
    # What `sage chat` does on Ctrl-C: interrupt, drop the stream, send the next message at once.
    response = server.post_stream("[[hold]] a long story")
    with reading(response) as messages:
        session = next(messages)["session_id"]
        assert llm.holding.wait(10)
        assert server.post(f"/api/sessions/{session}/interrupt").json()["interrupted"] is True
        assert session not in server.state.agent.runs.active  # saved and released before the answer
        assert server.state.store.last_run(session).status == "interrupted"
    llm.release()
    after = server.stream("still there?", session_id=session)  # no 409
    assert after[-3]["type"] == "final_answer"
