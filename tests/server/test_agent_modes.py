"""Agent modes end to end through /api/stream: multi-step plans, teams of sub-agents, deep thinking.

The stand-in LLM follows scripts; plan steps and sub-agents' tasks get theirs through ``llm.inject``.
Tools are a real MCP server's (``calc``: add, echo, explode, meet).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient, types_of

PLAN = {"analysis": "two parts", "steps": ["add two and forty", "echo the result"]}


@pytest.fixture
def calc(server: AgentClient, mcp_url: str) -> AgentClient:
    assert server.post("/api/mcp/add", {"name": "calc", "url": mcp_url}).status_code == 201
    return server


def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def planned(question: str, plan: dict[str, Any], replan: dict[str, Any] | None = None) -> str:
    scripts = f"[[plan {json.dumps(plan)}]]" + (f" [[replan {json.dumps(replan)}]]" if replan else "")
    return f"{scripts} {question}"


def test_multi_step_analyses_plans_runs_each_step_with_tools_and_answers(calc: AgentClient, llm: ChatStub) -> None:
    llm.inject["add two and forty"] = '[[tool:calc__add {"a": 2, "b": 40}]]'
    llm.inject["echo the result"] = '[[tool:calc__echo {"text": "forty-two"}]]'
    for mode in ("multi", "fibre"):  # fibre: the original's name of the mode
        llm.requests.clear()
        messages = calc.stream(planned("What is 2 + 40?", PLAN), agent_mode=mode)
        kinds = [k for k in types_of(messages) if k != "assistant_text"]
        assert kinds == [
            "task_analysis",
            "tool_call", "tool_call_result", "stage_summary",  # step 1
            "tool_call", "tool_call_result", "stage_summary",  # step 2
            "final_answer", "token_usage", "stream_end",
        ]  # fmt: skip
        analysis = of(messages, "task_analysis")[0]["content"]
        assert analysis == {"analysis": "two parts", "steps": [
            {"index": 1, "description": "add two and forty"}, {"index": 2, "description": "echo the result"}]}  # fmt: skip
        summaries = [m["content"] for m in of(messages, "stage_summary")]
        assert [(s["step"], s["status"], s["summary"]) for s in summaries] == [
            (1, "completed", "tool results: 42"), (2, "completed", "tool results: forty-two")]  # fmt: skip
        assert [m["metadata"] for m in of(messages, "stage_summary")] == [{"step": 1, "of": 2}, {"step": 2, "of": 2}]
        # The model was asked in this order: plan, step 1 (tool, then result), step 2 (same), final answer.
        asked = [r["messages"][-1]["content"] for r in llm.requests]
        assert "Plan the work" in llm.requests[0]["messages"][0]["content"] and "tools" not in llm.requests[0]
        assert asked[1] == "Step 1 of 2: add two and forty" and asked[3] == "Step 2 of 2: echo the result"
        assert llm.requests[-1]["messages"][-2]["content"].endswith("Step 2 (echo the result): tool results: forty-two")
        assert "tools" not in llm.requests[-1]  # the final answer is written without tools
        assert of(messages, "final_answer")[0]["content"].startswith("stub answer to: All steps are done.")
        history = calc.get(f"/api/sessions/{messages[-1]['session_id']}/messages").json()["messages"]
        assert [m["role"] for m in history] == ["user", "assistant"]  # the plan's traffic stays in the run's stream


def test_a_failed_step_makes_the_planner_plan_the_rest_again(calc: AgentClient, llm: ChatStub) -> None:
    llm.inject["break the vase"] = "[[tool:calc__explode]]"
    llm.inject["glue it"] = '[[tool:calc__echo {"text": "glued"}]]'
    plan = {"analysis": "fix it", "steps": ["break the vase", "sell the vase"]}
    replan = {"analysis": "recover", "steps": ["glue it"]}
    messages = calc.stream(planned("Handle the vase", plan, replan), agent_mode="multi")
    summaries = [m["content"] for m in of(messages, "stage_summary")]
    assert [(s["step"], s["description"], s["status"]) for s in summaries] == [
        (1, "break the vase", "failed"), (2, "glue it", "completed")]  # fmt: skip
    plans = of(messages, "task_analysis")
    assert [p["metadata"] for p in plans] == [{"replan": 0}, {"replan": 1}]
    assert plans[1]["content"]["steps"] == [{"index": 2, "description": "glue it"}]
    replanning = llm.requests[3]["messages"][0]["content"]
    assert "REPLAN" in replanning and "every tool call of the step failed" in replanning
    steps_run = [
        r["messages"][-1]["content"] for r in llm.requests if str(r["messages"][-1]["content"]).startswith("Step")
    ]
    assert steps_run == ["Step 1 of 2: break the vase", "Step 2 of 2: glue it"]  # "sell the vase" was dropped


def test_team_lead_delegates_to_sub_agents_that_run_at_once_with_their_own_tools(
    calc: AgentClient, llm: ChatStub
) -> None:
    meet = '[[tool:calc__meet {"group": "team", "parties": 2}]]'  # returns "met" only if both run at once
    llm.inject["You are researcher"] = meet  # in the sub-agents' system prompts, not in the lead's
    llm.inject["You are writer"] = meet
    team = [
        {"name": "researcher", "description": "Finds facts.", "system_prompt": "You research.",
         "tools": ["calc__meet", "calc__add"]},
        {"name": "writer", "description": "Writes text.", "tools": ["calc__meet"]},
    ]  # fmt: skip
    question = '[[tool:researcher {"task": "research part A"}]] [[tool:writer {"task": "write part B"}]] go'
    messages = calc.stream(question, agent_mode="team", custom_sub_agents=team)

    by_agent: dict[str, list[dict[str, Any]]] = {}
    for message in messages[:-1]:
        by_agent.setdefault(message["agent_name"], []).append(message)
    assert set(by_agent) == {"sage", "researcher", "writer"}
    assert [r["content"]["result"] for r in of(messages, "tool_call_result") if r["agent_name"] != "sage"] == [
        "met: 2 at once", "met: 2 at once"]  # fmt: skip
    spans = {a: (by_agent[a][0]["timestamp"], by_agent[a][-1]["timestamp"]) for a in ("researcher", "writer")}
    assert spans["researcher"][0] < spans["writer"][1] and spans["writer"][0] < spans["researcher"][1]  # overlap

    lead_calls = [m for m in of(messages, "tool_call") if m["agent_name"] == "sage"][0]["tool_calls"]
    assert sorted(c["function"]["name"] for c in lead_calls) == ["researcher", "writer"]
    offered = {json.dumps(sorted(t["function"]["name"] for t in r.get("tools", []))) for r in llm.requests}
    assert offered >= {'["researcher", "writer"]', '["calc__add", "calc__meet"]', '["calc__meet"]'}
    # The lead sees each member's report, never its tool traffic.
    last = llm.requests[-1]["messages"]
    reports = [m["content"] for m in last if m["role"] == "tool"]
    assert reports == ["tool results: met: 2 at once", "tool results: met: 2 at once"]
    assert "calc__meet" not in json.dumps(last)
    assert [m["content"]["agent"] for m in of(messages, "stage_summary")] in (
        ["researcher", "writer"], ["writer", "researcher"])  # fmt: skip
    assert messages[-3]["type"] == "final_answer" and messages[-3]["agent_name"] == "sage"


def test_each_sub_agent_keeps_to_its_tool_list_and_its_budget(calc: AgentClient, llm: ChatStub) -> None:
    llm.inject["You are counter"] = '[[tool:calc__add {"a": 1, "b": 2}]] [[tool:calc__echo {"text": "x"}]]'
    team = [{"name": "counter", "description": "Counts.", "tools": ["calc__add"], "max_loop_count": 2}]
    messages = calc.stream('[[tool:counter {"task": "count things"}]] go', agent_mode="team", custom_sub_agents=team)
    results = {
        r["content"]["name"]: r["content"] for r in of(messages, "tool_call_result") if r["agent_name"] == "counter"
    }
    assert results["calc__add"]["ok"] and results["calc__add"]["result"] == "3"
    assert not results["calc__echo"]["ok"] and "no tool named 'calc__echo'" in results["calc__echo"]["result"]
    breaks = of(messages, "loop_break")
    assert [b["agent_name"] for b in breaks] == ["counter"] and "2 model calls" in breaks[0]["content"]
    counter_requests = [r for r in llm.requests if "You are counter" in r["messages"][0]["content"]]
    assert len(counter_requests) == 2 and "tools" not in counter_requests[-1]  # the last call must answer


def test_a_team_needs_members_and_known_tools(calc: AgentClient) -> None:
    none = calc.post_stream("hi", agent_mode="team")
    assert none.status_code == 400 and "custom_sub_agents" in none.json()["detail"]
    unknown = calc.post_stream("hi", agent_mode="team", available_sub_agent_ids=["ghost"])
    assert unknown.status_code == 400 and "unknown agents: ghost" in unknown.json()["detail"]
    bad_tool = calc.post_stream("hi", agent_mode="team", custom_sub_agents=[{"name": "a", "tools": ["rm_rf"]}])
    assert bad_tool.status_code == 400 and "sub-agent a: rm_rf" in bad_tool.json()["detail"]


def test_deep_thinking_adds_a_visible_thinking_step_for_models_that_do_not_reason(
    server: AgentClient, llm: ChatStub
) -> None:
    messages = server.stream("Why is the sky blue?", deep_thinking=True)
    thinking = of(messages, "reasoning_content")
    assert thinking and types_of(messages).index("reasoning_content") == 0
    assert "".join(m["content"] for m in thinking).startswith("stub answer to: Why is the sky blue?")
    assert llm.requests[0]["messages"][-1]["content"].startswith("Before answering, think")
    assert llm.requests[1]["messages"][-1]["content"].startswith("(my reasoning so far)")

    llm.requests.clear()  # a reasoning model: its own reasoning is streamed, no extra step
    messages = server.stream("[[reason]] Why?", deep_thinking=True, llm_model_config={"model": "deepseek-reasoner"})
    assert [m["content"] for m in of(messages, "reasoning_content")] == ["thinking…"] and len(llm.requests) == 1

    messages = server.stream("[[reason]] Why?", deep_thinking=False)  # off: no reasoning in the stream
    assert of(messages, "reasoning_content") == [] and of(messages, "final_answer")
