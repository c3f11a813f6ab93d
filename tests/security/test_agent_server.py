"""Attacks on the agent server, each against the real server on loopback: refused or harmless."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient

KEYS = {"api_keys": "alice=key-alice,bob=key-bob,root=key-root", "admin_keys": "key-root"}


def _as(server: AgentClient, key: str) -> AgentClient:
    return replace(server, headers={"Authorization": f"Bearer {key}"})


def test_registering_a_stdio_tool_server_runs_nothing_unless_allowed(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "PWNED"
    spec = {"name": "evil", "protocol": "stdio", "command": "sh", "args": ["-c", f"id > {marker}"]}
    local_admin = start_server()  # no keys: the loopback user is an admin, and still may not run commands
    refused = local_admin.post("/api/mcp/add", spec)
    assert refused.status_code == 403
    assert "'sh' is not allowed" in refused.json()["detail"] and "SAGE_MCP_STDIO_COMMANDS" in refused.json()["detail"]
    assert not marker.exists()
    assert local_admin.get("/api/mcp/list").json() == []


def test_tool_server_changes_are_admin_only(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(**KEYS, mcp_stdio_commands=sys.executable)
    alice, root = _as(server, "key-alice"), _as(server, "key-root")
    spec = {"name": "calc", "protocol": "stdio", "command": sys.executable, "args": ["-m", "tests.mcp_tool_server"]}
    denied = alice.post("/api/mcp/add", spec)
    assert denied.status_code == 403 and "not an admin" in denied.json()["detail"]
    assert root.post("/api/mcp/add", spec).status_code == 201
    for response in (
        alice.put("/api/mcp/calc", spec),
        alice.put("/api/mcp/calc/toggle"),
        alice.post("/api/mcp/calc/refresh"),
        alice.delete("/api/mcp/calc"),
    ):
        assert response.status_code == 403, response.text
    assert [s["status"] for s in alice.get("/api/mcp/list").json()] == ["connected"]  # listing stays open


def test_another_users_sessions_are_invisible_and_untouchable(
    start_server, llm: ChatStub, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    server = start_server(**KEYS)
    alice, bob, root = _as(server, "key-alice"), _as(server, "key-bob"), _as(server, "key-root")
    first = alice.post_stream("my secret plan")
    session = first.headers["X-Session-Id"]
    assert [m["type"] for m in (json.loads(x) for x in first.iter_lines() if x)][-1] == "stream_end"
    history = alice.get(f"/api/sessions/{session}/messages").json()["messages"]

    assert session not in {s["session_id"] for s in bob.get("/api/sessions").json()}
    assert session in {s["session_id"] for s in alice.get("/api/sessions").json()}
    assert bob.get("/api/sessions", params={"user_id": "alice"}).status_code == 403
    assert bob.get(f"/api/sessions/{session}/messages").status_code == 404
    assert bob.get(f"/api/stream/resume/{session}").status_code == 404
    assert bob.post(f"/api/sessions/{session}/interrupt").status_code == 404
    calls = len(llm.requests)
    hijack = bob.post_stream("continue her plan", session_id=session)
    assert hijack.status_code == 404
    assert len(llm.requests) == calls  # her history never reached the model on his behalf
    assert alice.get(f"/api/sessions/{session}/messages").json()["messages"] == history
    impersonate = bob.post_stream("hello", user_id="alice")
    assert impersonate.status_code == 403 and "not your key's user" in impersonate.json()["detail"]

    with caplog.at_level(logging.INFO, logger="sage.audit"):
        assert root.get(f"/api/sessions/{session}/messages").json()["messages"] == history
        assert session in {s["session_id"] for s in root.get("/api/sessions").json()}
    assert f"admin root read session {session} of user alice" in caplog.text
    assert root.post_stream("as admin", session_id=session).status_code == 404  # admins read, never write


def test_a_running_stream_can_be_followed_and_stopped_only_by_its_owner(start_server, llm: ChatStub) -> None:  # type: ignore[no-untyped-def]
    server = start_server(**KEYS)
    alice, bob = _as(server, "key-alice"), _as(server, "key-bob")
    running = alice.post_stream("[[hold]] long answer")
    session = running.headers["X-Session-Id"]
    try:
        assert llm.holding.wait(15)
        assert bob.get(f"/api/stream/resume/{session}").status_code == 404
        assert bob.post(f"/api/sessions/{session}/interrupt").status_code == 404
        assert alice.post(f"/api/sessions/{session}/interrupt").json()["interrupted"] is True
    finally:
        llm.release()
        running.close()


def test_tasks_belong_to_their_submitter(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(**KEYS)
    alice, bob = _as(server, "key-alice"), _as(server, "key-bob")
    task = alice.post("/api/tasks", {"messages": [{"role": "user", "content": "a long job"}]}).json()
    assert task["user_id"] == "alice"
    assert alice.get(f"/api/tasks/{task['task_id']}").ok
    assert bob.get(f"/api/tasks/{task['task_id']}").status_code == 404
    assert bob.get(f"/api/tasks/{task['task_id']}/stream").status_code == 404
    forged = bob.post("/api/tasks", {"messages": [{"role": "user", "content": "x"}], "user_id": "alice"})
    assert forged.status_code == 403


def test_without_keys_only_loopback_host_names_are_served(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    # DNS rebinding: the attacker's page reaches 127.0.0.1 under its own name, which it sends as Host.
    rebound = requests.get(f"{server.url}/api/sessions", headers={"Host": "attacker.example:8080"}, timeout=10)
    assert rebound.status_code == 400 and "attacker.example" in rebound.json()["detail"]
    assert requests.get(f"{server.url}/api/sessions", headers={"Host": "localhost:8080"}, timeout=10).ok
    keyed = start_server(**KEYS)  # with keys, the Host may be any name a proxy uses
    proxied = requests.get(f"{keyed.url}/api/sessions", timeout=10,
                           headers={"Host": "sage.example.org", "Authorization": "Bearer key-alice"})  # fmt: skip
    assert proxied.ok


@pytest.mark.parametrize("with_keys", [False, True])
def test_cross_origin_writes_are_refused(start_server, with_keys: bool) -> None:  # type: ignore[no-untyped-def]
    server = start_server(**KEYS) if with_keys else start_server()
    client = _as(server, "key-alice") if with_keys else server
    body = {"messages": [{"role": "user", "content": "hi"}]}
    evil = requests.post(f"{server.url}/api/chat", json=body, timeout=30,
                         headers={**client.headers, "Origin": "http://evil.example"})  # fmt: skip
    assert evil.status_code == 403 and "cross-origin" in evil.json()["detail"]
    same = requests.post(f"{server.url}/api/chat", json=body, timeout=30,
                         headers={**client.headers, "Origin": server.url})  # fmt: skip
    assert same.status_code == 200, same.text
    allowed = start_server(allowed_origins="https://console.example")
    console = requests.post(f"{allowed.url}/api/chat", json=body, timeout=30,
                            headers={"Origin": "https://console.example"})  # fmt: skip
    assert console.status_code == 200


def test_revoked_and_unknown_keys_are_refused(start_server) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.identity import issue_key, revoke_key

    server = start_server(key_cache_seconds=0)
    db = server.state.platform.db
    issued = issue_key(db, "carol")
    issue_key(db, "dave")  # keys stay configured after carol's is revoked (with none, loopback is trusted)
    carol = _as(server, issued.secret)
    assert carol.get("/api/sessions").ok
    assert server.get("/api/sessions").status_code == 401  # a stored key now exists: keys are required
    assert _as(server, "sage_forged").get("/api/sessions").status_code == 401
    assert revoke_key(db, issued.key_id)
    assert carol.get("/api/sessions").status_code == 401


def test_a_body_without_a_json_content_type_is_not_parsed(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    # What fetch() with a Blob body sends: no Content-Type, so no CORS preflight in a browser.
    blob = requests.post(f"{server.url}/api/chat", data=b'{"messages": [{"role": "user", "content": "hi"}]}',
                         headers={"Content-Type": ""}, timeout=30)  # fmt: skip
    assert blob.status_code == 422
    assert blob.request.headers.get("Content-Type") in (None, "")


def test_a_non_loopback_client_without_keys_is_refused() -> None:
    """The guard's client check, driven through its ASGI interface (only loopback exists on this machine)."""
    import asyncio

    from sage_platform.request_guard import RequestGuard

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def call(client: str, keys: bool) -> int:
        sent: list[dict] = []  # type: ignore[type-arg]

        async def send(message: dict) -> None:  # type: ignore[type-arg]
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/api/sessions", "client": (client, 5555),
                 "headers": [(b"host", b"127.0.0.1:8080")]}  # fmt: skip
        asyncio.run(RequestGuard(app, bound_host="0.0.0.0", keys_configured=lambda: keys)(scope, None, send))
        return int(sent[0]["status"])

    assert call("192.0.2.7", keys=False) == 403
    assert call("127.0.0.1", keys=False) == 200
    assert call("192.0.2.7", keys=True) == 200  # with keys, the key decides


def test_a_turn_that_cannot_be_saved_says_so_before_stream_end(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    with server.state.platform.db.connect() as conn:
        conn.execute("DROP TABLE agent_runs")  # every save now fails
    messages = [json.loads(x) for x in server.post_stream("hi").iter_lines() if x]
    assert [m["type"] for m in messages][-2:] == ["error", "stream_end"]
    assert "could not be saved" in messages[-2]["content"] and messages[-1]["saved"] is False


def test_mcp_setting_json_in_the_working_directory_is_ignored(start_server, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    planted = {"mcpServers": {"evil": {"protocol": "stdio", "command": "sh", "args": ["-c", f"touch {tmp_path}/RAN"]}}}
    (tmp_path / "mcp_setting.json").write_text(json.dumps(planted))
    monkeypatch.chdir(tmp_path)
    server = start_server()
    assert server.get("/api/mcp/list").json() == []
    assert not (tmp_path / "RAN").exists()
