"""Past capacity, a new run is refused on arrival (503 with Retry-After, naming the limit), while
what already runs, and every request that stops or reads runs, goes on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import requests

from sage_platform.server.admission import CUT_EVERY_S, MIN_RUNS, PERIOD_S, LoopLag, RunLimit
from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient


def test_a_run_past_the_limit_is_refused_on_arrival_and_the_running_one_goes_on(
    start_server: Callable[..., AgentClient], llm: ChatStub
) -> None:
    server = start_server(max_active_streams=1)
    held = server.post_stream("[[hold]] the one run this server takes")
    lines = held.iter_lines()
    assert next(lines)  # running, holding the only place
    assert llm.holding.wait(30)

    refused = server.post_stream("one more")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert "SAGE_MAX_ACTIVE_STREAMS" in refused.json()["detail"]
    chat = server.post("/api/chat", {"messages": [{"role": "user", "content": "and whole"}]})
    assert chat.status_code == 503

    assert server.get("/api/sessions").status_code == 200  # reads are never refused
    assert server.get("/health").json()["active_streams"] == 1
    llm.release()
    assert b'"type":"stream_end"' in b"".join(lines)
    assert server.post_stream("now there is room").status_code == 200


def test_a_loop_behind_its_work_refuses_new_runs(start_server: Callable[..., AgentClient], llm: ChatStub) -> None:
    server = start_server(max_queue_delay_ms=0.001)  # any lag at all is too much
    first = server.post_stream("starts the lag heartbeat")
    assert first.status_code in (200, 503)
    deadline = time.monotonic() + 30
    refused = server.post_stream("behind")
    while refused.status_code != 503 and time.monotonic() < deadline:
        refused = server.post_stream("behind")  # the heartbeat has measured no lag yet
    assert refused.status_code == 503 and "SAGE_MAX_QUEUE_DELAY_MS" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "1"
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_the_heartbeat_measures_lag_that_persists_not_one_long_step() -> None:
    def hold_the_loop(seconds: float) -> None:
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:  # CPU-bound work: nothing else runs meanwhile
            pass

    async def scenario() -> tuple[float, float, float]:
        lag = LoopLag()
        idle = await lag.next_beat()
        hold_the_loop(0.2)  # one long step
        after_one_step = await lag.next_beat()

        async def steady_work() -> None:
            for _ in range(40):
                hold_the_loop(0.05)
                await asyncio.sleep(0)

        work = asyncio.create_task(steady_work())
        behind = max([await lag.next_beat() for _ in range(8)])
        await work
        await lag.stop()
        return idle, after_one_step, behind

    idle, after_one_step, behind = asyncio.run(scenario())
    assert after_one_step < 0.2 - PERIOD_S  # one stall is not overload
    assert behind >= 0.05 - 2 * PERIOD_S  # every beat waits behind a 50 ms step
    assert idle < behind


def test_the_run_limit_follows_how_fast_runs_start() -> None:
    limit = RunLimit(ceiling=256, target_s=0.05)
    first = limit.limit
    for _ in range(20):
        limit.observe_start(0.01)  # in time: slow start, one more each
    assert limit.limit == first + 20
    limit.observe_start(0.5)  # late: cut by a tenth
    assert limit.limit == (first + 20) * 0.9
    limit.observe_start(0.5)  # the same congestion episode: not cut again
    assert limit.limit == (first + 20) * 0.9
    grown = limit.limit
    for _ in range(10):
        limit.observe_start(0.01)  # after a cut: about one more per limit's worth of runs
    assert grown < limit.limit < grown + 1
    limit._cut_at -= CUT_EVERY_S  # the next late run is a new episode
    for _ in range(200):
        limit.observe_start(1.0)
        limit._cut_at -= CUT_EVERY_S
    assert limit.limit == MIN_RUNS  # never shut entirely


def test_a_process_whose_runs_start_late_takes_fewer_at_once(
    start_server: Callable[..., AgentClient], llm: ChatStub
) -> None:
    server = start_server(max_queue_delay_ms=50)
    run_limit: RunLimit = server.app.state.run_limit
    held = server.post_stream("[[hold]] one")
    assert held.status_code == 200 and llm.holding.wait(30)
    second = server.post_stream("[[hold]] two")
    assert second.status_code == 200
    for _ in range(60):
        run_limit.observe_start(1.0)  # as if the last runs had each waited a second to start
        run_limit._cut_at -= CUT_EVERY_S
    third = server.post_stream("three")
    assert third.status_code == 503 and third.headers["Retry-After"] == "1"
    assert "runs start within SAGE_MAX_QUEUE_DELAY_MS" in third.json()["detail"]
    assert server.get("/health").json()["run_limit"] == MIN_RUNS
    llm.release()
