"""Limits that keep one request, run, tool or task from taking the server with it."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import replace

import pytest
import requests
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from sage_platform.agent.requests import StreamRequest
from sage_platform.agent.tasks import TaskStore
from sage_platform.agent.tools import Tool, ToolContext, run_tool
from sage_platform.db import Database
from sage_platform.sensors.agent_tasks import reap_orphaned_tasks
from sage_platform.server import routes_tasks
from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient


def test_unknown_message_fields_count_against_the_budget(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server()
    body = {"messages": [{"role": "user", "content": "hi", "padding": "lorem ipsum " * 75_000}]}  # 900 KB
    refused = server.post("/api/stream", body)
    assert refused.status_code == 400
    assert re.match(r"the new message has \d{6} tokens", refused.json()["detail"])  # the padding counted
    assert llm.requests == []


def test_every_run_has_a_deadline(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(run_timeout_s=1)
    messages = server.stream("[[hold]] this answer never ends")  # the stub holds the stream open
    llm.release()
    assert [m["type"] for m in messages][-2:] == ["error", "stream_end"]
    assert messages[-2]["content"] == "the run passed its deadline of 1 s (SAGE_RUN_TIMEOUT_S)"


def test_each_user_has_a_quota_of_concurrent_streams(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(api_keys="alice=ka,bob=kb", max_streams_per_user=1)
    alice = replace(server, headers={"Authorization": "Bearer ka"})
    bob = replace(server, headers={"Authorization": "Bearer kb"})
    first = alice.post_stream("[[hold]] long")
    try:
        assert llm.holding.wait(15)
        second = alice.post_stream("another")
        assert second.status_code == 429 and "SAGE_MAX_STREAMS_PER_USER" in second.json()["detail"]
        assert second.headers["Retry-After"] == "1"
        llm.release()
        assert [json.loads(x)["type"] for x in bob.post_stream("mine").iter_lines() if x][-1] == "stream_end"
    finally:
        llm.release()
        first.close()


def test_tool_results_are_cut_at_the_limit() -> None:
    async def flood(args: dict, ctx: ToolContext) -> str:  # type: ignore[type-arg]
        return "x" * 300_000

    tool = Tool("flood", "returns a lot", {"type": "object"}, flood)
    ok, text = asyncio.run(run_tool(tool, {}, ToolContext("u", "s", "session"), timeout=5, max_chars=1000))
    assert ok and text.startswith("x" * 1000) and "x" * 1001 not in text
    assert text.endswith("[cut: 300,000 characters, over SAGE_TOOL_RESULT_MAX_CHARS (1,000)]")


def test_a_task_whose_run_is_gone_is_failed_and_a_live_one_is_left(settings) -> None:  # type: ignore[no-untyped-def]
    tasks = TaskStore(Database.from_settings(settings))
    orphan = tasks.submit(StreamRequest(messages=[{"role": "user", "content": "one"}]))
    alive = tasks.submit(StreamRequest(messages=[{"role": "user", "content": "two"}]))
    instance = DagsterInstance.ephemeral()
    live_run = DagsterRun(job_name="streaming_agent_job", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
    instance.add_run(live_run)
    tasks.claim(orphan["task_id"], str(uuid.uuid4()))  # a run id the instance never heard of (SIGKILL, wiped)
    tasks.claim(alive["task_id"], live_run.run_id)
    assert reap_orphaned_tasks(tasks, instance) == [orphan["task_id"]]
    failed = tasks.get(orphan["task_id"])
    assert failed["status"] == "failed" and "no longer exists" in failed["error"]  # type: ignore[index]
    assert tasks.get(alive["task_id"])["status"] == "running"  # type: ignore[index]


def test_a_task_follower_gives_up_at_the_deadline(start_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(routes_tasks, "FOLLOW_GRACE_S", 0.0)
    server: AgentClient = start_server(run_timeout_s=0.5)
    task = server.post("/api/tasks", {"messages": [{"role": "user", "content": "nobody runs me"}]}).json()
    followed = requests.get(f"{server.url}/api/tasks/{task['task_id']}/stream", timeout=30)
    lines = [json.loads(x) for x in followed.iter_lines() if x]
    assert lines[-1]["type"] == "error" and "SAGE_RUN_TIMEOUT_S" in lines[-1]["content"]


def test_new_messages_are_tokenized_off_the_event_loop(start_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.tokenization import TokenCounter

    on_loop: list[bool] = []
    count_message = TokenCounter.count_message

    def observed(self: TokenCounter, message: dict) -> int:  # type: ignore[type-arg]
        if message.get("role") == "user":
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:  # a worker thread has no running loop
                on_loop.append(False)
        return count_message(self, message)

    monkeypatch.setattr(TokenCounter, "count_message", observed)
    server: AgentClient = start_server()
    assert server.stream("a long question " * 500)[-1]["type"] == "stream_end"
    assert on_loop and not any(on_loop)
