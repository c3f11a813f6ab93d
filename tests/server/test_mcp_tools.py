"""Tool calling through real MCP servers (streamable HTTP and stdio), and servers that are down."""

from __future__ import annotations

import json
import sys

from tests.chat_stub import ChatStub
from tests.mcp_tool_server import free_port
from tests.server.conftest import AgentClient, types_of


def _results(messages: list[dict]) -> list[dict]:
    return [m["content"] for m in messages if m["type"] == "tool_call_result"]


def test_tool_call_round_trip_through_mcp(server: AgentClient, mcp_url: str, llm: ChatStub) -> None:
    added = server.post("/api/mcp/add", {"name": "calc", "protocol": "streamable_http", "url": mcp_url})
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "connected"
    assert {t["name"] for t in added.json()["tools"]} == {"calc__add", "calc__echo", "calc__explode", "calc__meet"}

    messages = server.stream('[[tool:calc__add {"a": 2, "b": 40}]] add them')
    assert types_of(messages) == [
        "tool_call", "tool_call_result", "assistant_text", "assistant_text", "assistant_text",
        "final_answer", "token_usage", "stream_end",
    ]  # fmt: skip
    call = messages[0]["tool_calls"][0]
    assert call["function"] == {"name": "calc__add", "arguments": '{"a": 2, "b": 40}'}
    assert messages[1]["tool_call_id"] == call["id"] and messages[1]["content"] == {
        "ok": True, "name": "calc__add", "result": "42"}  # fmt: skip
    assert messages[-3]["content"] == "tool results: 42 "
    offered = {t["function"]["name"] for t in llm.requests[0]["tools"]}
    assert {"calc__add", "knowledge_search", "remember", "recall"} <= offered
    assert llm.requests[0]["messages"][-1]["role"] == "user"
    assert llm.requests[1]["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "42"}


def test_parallel_tool_calls_and_a_failing_tool(server: AgentClient, mcp_url: str) -> None:
    server.post("/api/mcp/add", {"name": "calc", "url": mcp_url})
    messages = server.stream('[[tool:calc__echo {"text": "hi"}]] [[tool:calc__explode]] [[tool:nope]] go')
    assert len(messages[0]["tool_calls"]) == 3
    results = {r["name"]: r for r in _results(messages)}
    assert results["calc__echo"] == {"ok": True, "name": "calc__echo", "result": "hi"}
    assert not results["calc__explode"]["ok"] and "Error executing tool explode" in results["calc__explode"]["result"]
    assert not results["nope"]["ok"] and "no tool named 'nope'" in results["nope"]["result"]
    assert messages[-3]["type"] == "final_answer"  # the loop went on after the failures


def test_tool_calls_of_one_turn_run_at_the_same_time(server: AgentClient, mcp_url: str) -> None:
    """Each ``meet`` call returns only once all three are in progress together."""
    server.post("/api/mcp/add", {"name": "calc", "url": mcp_url})
    call = '[[tool:calc__meet {"group": "turn-1", "parties": 3}]]'
    messages = server.stream(f"{call} {call} {call} go")
    assert [r["result"] for r in _results(messages)] == ["met: 3 at once"] * 3


def test_a_server_that_is_down_is_marked_unavailable_and_the_rest_still_work(
    server: AgentClient, llm: ChatStub
) -> None:
    down = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    added = server.post("/api/mcp/add", {"name": "gone", "url": down}).json()
    assert added["status"] == "unavailable" and added["reason"]
    assert server.get("/health").json()["mcp_servers"] == {"gone": "unavailable"}
    messages = server.stream('[[tool:remember {"text": "Ada likes tea"}]] remember this', user_id="ada")
    assert _results(messages)[0]["ok"], _results(messages)
    assert not any(t["function"]["name"].startswith("gone") for t in llm.requests[0]["tools"])


def test_stdio_server_and_management_routes(start_server) -> None:  # type: ignore[no-untyped-def]
    spec = {"name": "local", "protocol": "stdio", "command": sys.executable, "args": ["-m", "tests.mcp_tool_server"]}
    refused = start_server().post("/api/mcp/add", spec)  # no command is allowed by default
    assert refused.status_code == 403 and "SAGE_MCP_STDIO_COMMANDS" in refused.json()["detail"]
    server = start_server(mcp_stdio_commands=f"/bin/true,{sys.executable}")
    assert server.post("/api/mcp/add", spec).json()["status"] == "connected"
    assert server.post("/api/mcp/add", spec).status_code == 409
    messages = server.stream('[[tool:local__add {"a": 1, "b": 1}]] sum')
    assert _results(messages)[0]["result"] == "2"

    toggled = server.put("/api/mcp/local/toggle")
    assert toggled.json()["status"] == "disabled" and toggled.json()["enabled"] is False
    assert "local__add" not in {t["name"] for t in server.get("/api/tools").json() if t["available"]}
    assert server.put("/api/mcp/local/toggle").json()["status"] == "connected"
    assert server.post("/api/mcp/local/refresh").json()["status"] == "connected"
    assert server.delete("/api/mcp/local").json() == {"removed": "local"}
    assert server.get("/api/mcp/list").json() == []
    assert server.delete("/api/mcp/local").status_code == 404


def test_only_the_requested_tools_are_offered(server: AgentClient, llm: ChatStub) -> None:
    server.stream("hi", available_tools=["recall"])
    assert [t["function"]["name"] for t in llm.requests[-1]["tools"]] == ["recall"]
    bad = server.post_stream("hi", available_tools=["recall", "teleport"])
    assert bad.status_code == 400 and "teleport" in bad.json()["detail"] and "knowledge_search" in bad.json()["detail"]


def test_servers_are_preloaded_from_the_settings_file(start_server, mcp_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mcp_setting.json"
    path.write_text(json.dumps({"mcpServers": {"calc": {"protocol": "streamable_http", "url": mcp_url}}}))
    server = start_server(mcp_config_path=str(path))
    assert [(s["name"], s["status"]) for s in server.get("/api/mcp/list").json()] == [("calc", "connected")]


def test_api_keys_of_mcp_servers_are_never_listed(server: AgentClient, mcp_url: str) -> None:
    server.post("/api/mcp/add", {"name": "calc", "url": mcp_url, "api_key": "sk-very-secret"})
    listed = server.get("/api/mcp/list").text
    assert "sk-very-secret" not in listed and '"has_api_key":true' in listed
