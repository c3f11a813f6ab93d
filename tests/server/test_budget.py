"""The context budget: ratios of max_model_len, recent turns whole, older history summarised."""

from __future__ import annotations

import pytest

from sage_platform.agent.budget import ContextBudget, ContextTooLong, plan_context
from sage_platform.agent.turns import History, StoredMessage
from sage_platform.config import Settings
from sage_platform.tokenization import TokenCounter
from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient


def _history(*sizes: tuple[int, int]) -> History:
    messages, seq = [], 0
    for user, assistant in sizes:
        for role, tokens in (("user", user), ("assistant", assistant)):
            seq += 1
            messages.append(StoredMessage({"role": role, "content": f"m{seq}"}, tokens, seq))
    return History(messages)


def test_budget_shares_follow_the_ratios() -> None:
    budget = ContextBudget.from_settings(Settings(max_model_len=10_000, context_recent_turns=2), max_tokens=1000)
    assert (budget.new_message, budget.active, budget.history, budget.recent_turns) == (4500, 2700, 1800, 2)


def test_recent_turns_stay_whole_older_ones_fill_history_and_the_rest_is_summarised() -> None:
    budget = ContextBudget(new_message=100, active=100, history=60, recent_turns=2)
    history = _history((20, 20), (20, 20), (10, 10), (30, 30), (20, 20))  # seqs 1-10
    plan = plan_context(history, 50, TokenCounter.local(), budget)
    # turns 4-5 fill the active share (100); turns 2-3 the history share (60); turn 1 is summarised
    assert [m.seq for m in plan.kept] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert [m.seq for m in plan.to_summarize] == [1, 2]


def test_force_summary_summarises_all_but_the_recent_turns() -> None:
    budget = ContextBudget(new_message=100, active=100, history=1000, recent_turns=1)
    plan = plan_context(_history((5, 5), (5, 5), (5, 5)), 10, TokenCounter.local(), budget, force_summary=True)
    assert [m.seq for m in plan.kept] == [5, 6] and [m.seq for m in plan.to_summarize] == [1, 2, 3, 4]


def test_a_summary_replaces_what_it_covers() -> None:
    history = _history((5, 5), (5, 5), (5, 5))
    history.summary, history.summary_upto = "earlier: greetings", 4
    plan = plan_context(history, 10, TokenCounter.local(), ContextBudget(100, 100, 100, 3))
    assert [m.seq for m in plan.kept] == [5, 6] and plan.to_summarize == [] and plan.summary == "earlier: greetings"


def test_a_new_message_over_its_share_is_refused_with_the_numbers() -> None:
    with pytest.raises(ContextTooLong, match="has 120 tokens; its share of the context window is 100"):
        plan_context(History(), 120, TokenCounter.local(), ContextBudget(100, 100, 100, 3))


def test_tokens_are_counted_by_a_real_tokenizer() -> None:
    counter = TokenCounter.local()
    assert counter.count("hello world") == 2
    assert counter.count("unbelievably") > 1  # word pieces, not words
    assert counter.count_message({"role": "user", "content": "hello world"}) == 6


def test_long_conversations_are_summarised_by_the_llm_within_the_window(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(max_model_len=600, default_llm_max_tokens=100, context_recent_turns=1)
    words = " ".join(["apple"] * 50)
    session = server.stream(f"first {words}")[-1]["session_id"]
    for turn in ("second", "third", "fourth"):
        server.stream(f"{turn} {words}", session_id=session)
    summaries = [r for r in llm.requests if not r.get("stream")]
    assert summaries, "older history was never summarised"
    prompt = llm.requests[-1]["messages"]
    assert "Summary of the earlier conversation:\nSUMMARY(" in prompt[0]["content"]
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1]["content"].startswith("third") and prompt[-1]["content"].startswith("fourth")
    counter = TokenCounter.local()
    assert sum(counter.count_message(m) for m in prompt) <= 600 - 100
    stored = server.get(f"/api/sessions/{session}/messages").json()
    assert stored["summary"].startswith("SUMMARY(") and len(stored["messages"]) == 8  # history itself is kept

    too_long = server.post_stream(" ".join(["apple"] * 400), session_id=session)
    assert too_long.status_code == 400 and "share of the context window" in too_long.json()["detail"]


def test_force_summary_on_request(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(context_recent_turns=1)
    session = server.stream("one")[-1]["session_id"]
    server.stream("two", session_id=session)
    assert all(r.get("stream") for r in llm.requests)  # everything fitted: no summary yet
    server.stream("three", session_id=session, force_summary=True)
    assert not llm.requests[-2].get("stream") and "user: one" in llm.requests[-2]["messages"][-1]["content"]
    assert [m["content"] for m in llm.requests[-1]["messages"][1:]] == [
        "two", "stub answer to: two ", "three"]  # fmt: skip
