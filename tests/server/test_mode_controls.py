"""Every mode with the controls every run has: interrupt mid-step, resume, guidance, the context budget,
the loop budget, the session store, per-user scoping, /api/chat and Dagster tasks.

Each mode's run holds inside a step: the plain loop's answer, a plan's step, a sub-agent's task.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import requests

from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient, reading, types_of

MODES = ("simple", "multi", "team")
KEYS = {"api_keys": "alice=key-alice,bob=key-bob"}


def holding_request(mode: str, llm: ChatStub) -> tuple[str, dict[str, Any]]:
    """A question and body fields whose run holds mid-step until ``llm.release()``."""
    if mode == "simple":
        return "[[hold]] tell me", {}
    if mode == "multi":
        llm.inject["wait here"] = "[[hold]]"
        plan = json.dumps({"analysis": "one step", "steps": ["wait here"]})
        return f"[[plan {plan}]] tell me", {"agent_mode": "multi"}
    llm.inject["You are waiter"] = "[[hold]]"
    return '[[tool:waiter {"task": "wait"}]] tell me', {
        "agent_mode": "team", "custom_sub_agents": [{"name": "waiter", "description": "Waits.", "tools": []}]}  # fmt: skip


def as_user(server: AgentClient, key: str) -> AgentClient:
    return replace(server, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def two_users(start_server: Callable[..., AgentClient]) -> tuple[AgentClient, AgentClient]:
    server = start_server(**KEYS)
    return as_user(server, "key-alice"), as_user(server, "key-bob")


@pytest.mark.parametrize("mode", MODES)
def test_interrupt_mid_step_resume_store_and_scoping(
    mode: str, two_users: tuple[AgentClient, AgentClient], llm: ChatStub
) -> None:
    alice, bob = two_users
    session = f"held-{mode}"
    question, body = holding_request(mode, llm)
    try:
        with reading(alice.post_stream(question, session_id=session, **body)) as live:
            seen = [next(live)]
            assert llm.holding.wait(10)
            for path in (f"/api/stream/resume/{session}", f"/api/sessions/{session}/messages"):
                assert bob.get(path).status_code == 404  # another user's session does not exist for bob
            assert bob.post(f"/api/sessions/{session}/interrupt").status_code == 404
            assert bob.post(f"/api/sessions/{session}/inject-user-message", {"content": "x"}).status_code == 404
            with reading(requests.get(f"{alice.url}/api/stream/resume/{session}", params={"last_index": 0},
                                      headers=alice.headers, stream=True, timeout=30)) as resumed:  # fmt: skip
                assert next(resumed) == seen[0]  # the live run, followed from another connection
            stopped = alice.post(f"/api/sessions/{session}/interrupt").json()
            assert stopped == {"session_id": session, "interrupted": True}
            seen += list(live)
    finally:
        llm.release()
    assert [m["content"] for m in seen if m["type"] == "error"] == ["stream stopped: interrupted by request"]
    assert types_of(seen)[-1] == "stream_end" and seen[-1]["saved"]
    replay = alice.get(f"/api/stream/resume/{session}", params={"last_index": 1})
    assert [json.loads(line) for line in replay.text.splitlines()] == seen[1:]  # stored: no gap, no duplicate
    history = alice.get(f"/api/sessions/{session}/messages").json()["messages"]
    assert history[0]["role"] == "user" and "tell me" in history[0]["content"]
    assert alice.state.store.last_run(session).status == "interrupted"
    assert alice.stream("again", session_id=session, **body)[-1]["saved"]  # the session is free again


@pytest.mark.parametrize("mode", MODES)
def test_guidance_joins_the_run_at_its_next_step(
    mode: str, two_users: tuple[AgentClient, AgentClient], llm: ChatStub
) -> None:
    alice, _ = two_users
    session = f"guided-{mode}"
    question, body = holding_request(mode, llm)
    with reading(alice.post_stream(question, session_id=session, **body)) as live:
        next(live)
        assert llm.holding.wait(10)
        injected = alice.post(f"/api/sessions/{session}/inject-user-message", {"message": "also say hi"})
        assert injected.json() == {"session_id": session, "injected": True}
        llm.release()
        messages = list(live)
    guidance = [m for m in messages if m["type"] == "user_input"]
    assert [(m["content"], m["role"]) for m in guidance] == [("also say hi", "user")]
    later = [r for r in llm.requests if {"role": "user", "content": "also say hi"} in r["messages"]]
    assert later, "no model call after the guidance saw it"
    assert messages[-3]["type"] == "final_answer"
    history = [m["content"] for m in alice.get(f"/api/sessions/{session}/messages").json()["messages"]]
    assert "also say hi" in history


@pytest.mark.parametrize("mode", MODES)
def test_context_and_loop_budgets_hold_in_every_mode(mode: str, server: AgentClient, llm: ChatStub) -> None:
    _, body = holding_request(mode, llm)
    llm.inject.clear()
    long = "word " * 400
    refused = server.post_stream(long, context_budget_config={"max_model_len": 1000, "max_new_message_ratio": 0.1},
                                 **body)  # fmt: skip
    assert refused.status_code == 400 and "its share of the context window is" in refused.json()["detail"]
    over = server.post_stream("hi", max_loop_count=10_000, **body)
    assert over.status_code == 400 and "SAGE_AGENT_MAX_LOOP_COUNT" in over.json()["detail"]

    llm.requests.clear()
    plan = json.dumps({"analysis": "a", "steps": ["add numbers"]})
    llm.inject["add numbers"] = '[[tool:calc__add {"a": 1, "b": 1}]]'
    messages = server.stream(f"[[plan {plan}]] [[tool:waiter {{\"task\": \"add numbers\"}}]] go", max_loop_count=1,
                             context_budget_config={"max_model_len": 4000}, **body)  # fmt: skip
    assert messages[-3]["type"] == "final_answer"
    lead = [r for r in llm.requests if "You are waiter" not in r["messages"][0]["content"]]
    assert lead and all("tools" not in r for r in lead)  # one model call per loop: it must answer


@pytest.mark.parametrize("mode", MODES)
def test_chat_and_tasks_run_every_mode(
    mode: str, server: AgentClient, llm: ChatStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    question, body = holding_request(mode, llm)
    llm.release()  # nothing holds: the run goes straight through
    chat = server.post("/api/chat", {"messages": [{"role": "user", "content": question}], **body}).json()
    assert chat["errors"] == [] and chat["final_answer"]
    kinds = types_of(chat["messages"])
    assert {"simple": "final_answer", "multi": "task_analysis", "team": "stage_summary"}[mode] in kinds

    from dagster import DagsterInstance

    from sage_platform.jobs import streaming_agent_job
    from sage_platform.resources import SageResource

    for name, value in {"SAGE_DEFAULT_LLM_MODEL_NAME": "stub-model", "SAGE_DEFAULT_LLM_API_BASE_URL": llm.url}.items():
        monkeypatch.setenv(name, value)
    task = server.post("/api/tasks", {"messages": [{"role": "user", "content": question}], **body}).json()
    streaming_agent_job.execute_in_process(
        run_config={"ops": {"run_agent_task": {"config": {"task_id": task["task_id"]}}}},
        instance=DagsterInstance.ephemeral(), resources={"sage": SageResource()},
    )  # fmt: skip
    events = [json.loads(line) for line in server.get(f"/api/tasks/{task['task_id']}/stream").text.splitlines()]
    assert types_of(events)[-1] == "stream_end" and types_of(events) == types_of(chat["messages"])
