"""Agent tasks end to end: POST /api/tasks → agent_task_sensor → streaming_agent_job → agent_events."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable

import pytest
import requests
from dagster import DagsterInstance, build_sensor_context

from sage_platform.agent.tasks import TaskStore
from sage_platform.db import Database
from sage_platform.jobs import streaming_agent_job
from sage_platform.resources import SageResource
from sage_platform.sensors import agent_task_sensor
from tests._children import Child
from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, llm: ChatStub) -> None:
    monkeypatch.setenv("SAGE_DEFAULT_LLM_MODEL_NAME", "stub-model")
    monkeypatch.setenv("SAGE_DEFAULT_LLM_API_BASE_URL", llm.url)
    monkeypatch.setenv("SAGE_DEFAULT_LLM_MAX_RETRIES", "0")


def _run_job(task_id: str, raise_on_error: bool = True):  # type: ignore[no-untyped-def]
    config = {"ops": {"run_agent_task": {"config": {"task_id": task_id}}}}
    return streaming_agent_job.execute_in_process(
        run_config=config, instance=DagsterInstance.ephemeral(), raise_on_error=raise_on_error,
        resources={"sage": SageResource()},
    )  # fmt: skip


def _job_process(task_id: str) -> Child:
    """``streaming_agent_job`` for one task in a process of its own, as Dagster's run launcher starts it."""
    config = {"ops": {"run_agent_task": {"config": {"task_id": task_id}}}}
    code = ("from dagster import DagsterInstance; from sage_platform.jobs import streaming_agent_job;"
            "from sage_platform.resources import SageResource;"
            f"streaming_agent_job.execute_in_process(run_config={config!r}, instance=DagsterInstance.ephemeral(),"
            "resources={'sage': SageResource()})")  # fmt: skip
    return Child([sys.executable, "-c", code], env=dict(os.environ), name="the task run")


def test_submit_sense_run_and_follow(llm_env: None, start_server: Callable[..., AgentClient]) -> None:
    server = start_server()
    submitted = server.post("/api/tasks", {"messages": [{"role": "user", "content": "summarise the docs"}],
                                           "user_id": "ada"})  # fmt: skip
    assert submitted.status_code == 202
    task = submitted.json()
    assert task["status"] == "pending" and task["user_id"] == "ada"

    requests_ = list(
        agent_task_sensor(
            build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"sage": SageResource()})
        )
    )
    assert len(requests_) == 1
    run_request = requests_[0]
    assert run_request.run_key == task["task_id"]
    assert run_request.tags == {"sage/task": task["task_id"], "sage/user": "ada", "sage/session": task["session_id"]}

    result = _run_job(task["task_id"])
    status = server.get(f"/api/tasks/{task['task_id']}").json()
    assert status["status"] == "completed" and status["dagster_run_id"] == result.run_id and status["attempts"] == 1
    lines = [json.loads(x) for x in server.get(f"/api/tasks/{task['task_id']}/stream").text.splitlines()]
    assert lines[-1]["type"] == "stream_end" and lines[-3]["content"] == "stub answer to: summarise the docs "
    tail = [
        json.loads(x)
        for x in server.get(f"/api/tasks/{task['task_id']}/stream", params={"offset": 3}).text.splitlines()
    ]
    assert tail == lines[3:]
    after = list(
        agent_task_sensor(
            build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"sage": SageResource()})
        )
    )
    assert [type(r).__name__ for r in after] == ["SkipReason"] and "no pending" in after[0].skip_message
    assert server.get("/api/tasks/nope").status_code == 404


def test_the_stream_is_followed_live_while_the_job_runs(llm_env: None, llm: ChatStub, server: AgentClient) -> None:
    task = server.post("/api/tasks", {"messages": [{"role": "user", "content": "[[hold]] long one"}]}).json()
    runner = threading.Thread(target=_run_job, args=(task["task_id"],))
    runner.start()
    response = requests.get(f"{server.url}/api/tasks/{task['task_id']}/stream", stream=True, timeout=60)
    lines = response.iter_lines()
    first = json.loads(next(line for line in lines if line))
    assert first["type"] == "assistant_text"
    assert llm.holding.wait(15)  # the job is still running and we already have its first message
    llm.release()
    rest = [json.loads(line) for line in lines if line]
    runner.join(60)
    assert rest[-1]["type"] == "stream_end"


def test_a_killed_run_retried_completes_once_without_duplicates(
    llm_env: None, llm: ChatStub, settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.agent.requests import StreamRequest

    tasks = TaskStore(Database.from_settings(settings))
    task = tasks.submit(StreamRequest(messages=[{"role": "user", "content": "[[hold]] survive a crash"}]))
    with _job_process(task["task_id"]) as worker:
        worker.wait_for(llm.holding.is_set, timeout=60, what="the model call")
        worker.wait_for(lambda: len(tasks.events(task["task_id"])) >= 2, timeout=30, what="two stored events")
        worker.kill_group()
    assert tasks.get(task["task_id"])["status"] == "running"  # type: ignore[index]
    llm.release()

    result = _run_job(task["task_id"])  # the retry
    events = tasks.events(task["task_id"])
    final = tasks.get(task["task_id"])
    assert final["status"] == "completed" and final["attempts"] == 2 and final["dagster_run_id"] == result.run_id  # type: ignore[index]
    assert [e["type"] for e in events].count("stream_end") == 1 and events[-1]["type"] == "stream_end"
    assert events[-1]["total_stream_count"] == len(events) - 1  # no gaps, no duplicates

    again = _run_job(task["task_id"])  # a third run finds it completed and does nothing
    assert tasks.get(task["task_id"])["attempts"] == 2 and tasks.events(task["task_id"]) == events  # type: ignore[index]
    assert again.success


def test_a_task_whose_runs_keep_failing_is_marked_failed_with_the_error(llm_env: None, settings) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.agent.requests import StreamRequest

    tasks = TaskStore(Database.from_settings(settings))
    task = tasks.submit(StreamRequest(messages=[{"role": "user", "content": "[[status:500]] doomed"}]))
    result = _run_job(task["task_id"], raise_on_error=False)
    assert not result.success
    final = tasks.get(task["task_id"])
    assert final["status"] == "failed" and "HTTP 500" in final["error"] and final["attempts"] == 3  # type: ignore[index]


def test_sage_task_submit_and_status(settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.cli import main

    assert main(["task", "submit", "what changed?", "--user", "bob"]) == 0
    task_id = capsys.readouterr().out.strip()
    assert main(["task", "status", task_id]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "pending" and status["user_id"] == "bob"
    assert main(["task", "status", "nope"]) == 1


def test_guidance_reaches_a_task_running_in_another_process(
    llm_env: None, llm: ChatStub, start_server: Callable[..., AgentClient]
) -> None:
    server = start_server()
    body = {"messages": [{"role": "user", "content": "[[hold]] a long task"}], "session_id": "guided-task"}
    task = server.post("/api/tasks", body).json()
    with _job_process(task["task_id"]) as worker:
        worker.wait_for(llm.holding.is_set, timeout=60, what="the model call")
        injected = server.post("/api/sessions/guided-task/inject-user-message", {"content": "also say hi"})
        assert injected.json() == {"session_id": "guided-task", "injected": True, "task_id": task["task_id"]}

        def taken() -> bool:
            with server.state.platform.db.pool.connection() as conn:
                row = conn.execute("SELECT taken_at FROM agent_guidance WHERE task_id = %s", (task["task_id"],))
                return row.fetchone()[0] is not None  # type: ignore[index]

        worker.wait_for(taken, timeout=30, what="the run to take the guidance")
        llm.release()
        assert worker.wait(120) == 0
    events = [json.loads(line) for line in server.get(f"/api/tasks/{task['task_id']}/stream").text.splitlines()]
    assert [e["content"] for e in events if e["type"] == "user_input"] == ["also say hi"]
    assert {"role": "user", "content": "also say hi"} in llm.requests[-1]["messages"]
    assert server.post("/api/sessions/nobody/inject-user-message", {"content": "x"}).status_code == 404
