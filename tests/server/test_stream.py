"""POST /api/stream and /api/chat against the scripted LLM: message shapes, persistence, errors."""

from __future__ import annotations

from tests.chat_stub import ChatStub
from tests.mcp_tool_server import free_port
from tests.server.conftest import AgentClient, types_of

FIELDS = {
    "type",
    "role",
    "content",
    "tool_calls",
    "tool_call_id",
    "message_id",
    "session_id",
    "agent_name",
    "metadata",
    "timestamp",
}


def test_stream_sends_text_as_it_arrives_then_final_answer_usage_and_end(server: AgentClient) -> None:
    messages = server.stream("What is Sage?")
    kinds = types_of(messages)
    assert kinds[-3:] == ["final_answer", "token_usage", "stream_end"]
    assert set(kinds[:-3]) == {"assistant_text"} and len(kinds[:-3]) >= 5  # word by word, not one blob
    for message in messages[:-1]:
        assert set(message) == FIELDS and message["agent_name"] == "sage"
    text = "".join(m["content"] for m in messages if m["type"] == "assistant_text")
    final = messages[-3]
    assert final["content"] == text == "stub answer to: What is Sage? "
    assert {m["message_id"] for m in messages if m["type"] == "assistant_text"} == {final["message_id"]}
    assert messages[-2]["content"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    end = messages[-1]
    assert end == {"type": "stream_end", "session_id": final["session_id"], "total_stream_count": len(messages) - 1,
                   "saved": True}  # fmt: skip


def test_session_history_is_persisted_and_sent_back_to_the_model(server: AgentClient, llm: ChatStub) -> None:
    first = server.stream("My name is Ada.")
    session = first[-1]["session_id"]
    server.stream("What is my name?", session_id=session)
    prompt = llm.requests[-1]["messages"]
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1]["content"] == "My name is Ada." and prompt[2]["content"].startswith("stub answer to: My name")

    history = server.get(f"/api/sessions/{session}/messages").json()["messages"]
    assert [(m["seq"], m["role"]) for m in history] == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    assert all(m["tokens"] > 4 for m in history)
    listed = server.get("/api/sessions").json()
    assert [s["session_id"] for s in listed] == [session] and listed[0]["message_count"] == 4


def test_chat_returns_the_whole_run(server: AgentClient) -> None:
    body = server.post("/api/chat", {"messages": [{"role": "user", "content": "hello"}], "user_id": "u1"}).json()
    assert body["final_answer"] == "stub answer to: hello "
    assert body["errors"] == [] and body["messages"][-1]["type"] == "stream_end"
    assert server.get("/api/sessions", params={"user_id": "u1"}).json()[0]["session_id"] == body["session_id"]


def test_reasoning_content_is_streamed_apart_from_the_answer(server: AgentClient) -> None:
    messages = server.stream("[[reason]] why?")
    assert messages[0]["type"] == "reasoning_content" and messages[0]["content"] == "thinking…"
    assert "thinking" not in messages[-3]["content"]


def test_llm_500_gives_an_error_message_and_a_clean_end(server: AgentClient) -> None:
    messages = server.stream("[[status:500]] hi")
    assert types_of(messages) == ["error", "stream_end"]
    assert "HTTP 500" in messages[0]["content"]
    again = server.stream("plain", session_id=messages[-1]["session_id"])  # the session is not stuck
    assert again[-3]["type"] == "final_answer"


def test_an_error_inside_the_stream_ends_it_cleanly(server: AgentClient) -> None:
    messages = server.stream("[[stream_error]] hi")
    assert types_of(messages) == ["assistant_text", "assistant_text", "error", "stream_end"]
    assert messages[2]["content"] == "the language model reported an error inside its answer stream"


def test_transient_429s_are_retried_with_backoff(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server = start_server(default_llm_max_retries=3)
    messages = server.stream("[[status:429x2]] hi")
    assert messages[-3]["type"] == "final_answer"
    assert len(llm.requests) == 3  # two refused, the third answered


def test_llm_timeout_gives_an_error_not_a_hung_connection(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(default_llm_timeout=0.5)
    messages = server.stream("[[slow:3]] hi")
    assert types_of(messages) == ["error", "stream_end"]
    assert "did not answer in time" in messages[0]["content"]


def test_an_unreachable_model_is_named_as_such_after_its_retries(start_server) -> None:  # type: ignore[no-untyped-def]
    closed = free_port()  # nothing listens there
    server = start_server(default_llm_api_base_url=f"http://127.0.0.1:{closed}/v1", default_llm_max_retries=1)
    messages = server.stream("hi")
    assert types_of(messages) == ["error", "stream_end"]
    assert messages[0]["content"] == "the language model cannot be reached (connection refused or unreachable)"


def test_a_model_override_with_no_model_anywhere_is_refused_before_streaming(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(default_llm_model_name=None)  # (with no override at all: retrieval only)
    response = server.post_stream("hi", llm_model_config={"temperature": 0.5})
    assert response.status_code == 503 and "SAGE_DEFAULT_LLM_MODEL_NAME" in response.json()["detail"]


def test_per_request_model_config_overrides_the_default(server: AgentClient, llm: ChatStub) -> None:
    server.stream("hi", llm_model_config={"model": "other", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9})
    sent = llm.requests[-1]
    assert (sent["model"], sent["max_tokens"], sent["temperature"], sent["top_p"]) == ("other", 7, 0.5, 0.9)
