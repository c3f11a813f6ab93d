"""Auth, request limits, malformed bodies, OpenAPI, storage back ends and the built-in tools."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from sage_platform.network import check_bind
from tests.server.conftest import AgentClient


def test_api_keys_guard_every_api_route_but_health(start_server) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(api_keys="k-one,k-two")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic k-one"}):
        response = requests.get(f"{server.url}/api/sessions", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "SAGE_API_KEYS" in response.json()["detail"]
    denied = requests.post(
        f"{server.url}/api/stream", json={"messages": [{"role": "user", "content": "x"}]}, timeout=10
    )
    assert denied.status_code == 401
    assert requests.get(f"{server.url}/api/sessions", headers={"Authorization": "Bearer k-two"}, timeout=10).ok
    health = requests.get(f"{server.url}/health", timeout=10)
    assert health.ok and health.json()["auth"] is True
    # Only hashes are kept: the ring's keys are the secrets' sha256 digests, and no attribute holds a secret.
    import hashlib

    ring = server.state.keys
    assert set(ring._static) == {hashlib.sha256(k.encode()).hexdigest() for k in ("k-one", "k-two")}
    assert not any(secret in repr(vars(ring)) for secret in ("k-one", "k-two"))


def test_without_keys_or_with_no_auth_the_api_is_open(start_server) -> None:  # type: ignore[no-untyped-def]
    assert start_server().get("/api/sessions").ok
    assert start_server(api_keys="k", no_auth=True).get("/api/sessions").ok


def test_no_auth_or_no_keys_is_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="only on a loopback address"):
        check_bind("0.0.0.0", keys_configured=True, no_auth=True)
    with pytest.raises(ValueError, match="refusing to serve on 0.0.0.0 without keys.*SAGE_API_KEYS"):
        check_bind("0.0.0.0", keys_configured=False, no_auth=False)
    check_bind("127.0.0.1", keys_configured=False, no_auth=True)
    check_bind("::1", keys_configured=False, no_auth=False)
    check_bind("0.0.0.0", keys_configured=True, no_auth=False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "last message must come from the user"),
        ({"messages": [{"role": "user", "content": "hi"}], "memory_type": "forever"}, "memory_type"),
        ({"messages": [{"role": "user", "content": "hi"}], "knowledge_bases": ["nope"]}, "dense, sparse, hybrid"),
        ({"messages": [{"role": "user", "content": "hi"}], "session_id": "a b"}, "session_id"),
        ({"messages": [{"role": "user", "content": "hi"}], "surprise": 1}, "surprise"),
    ],
)
def test_malformed_bodies_get_422_naming_the_problem(server: AgentClient, body: dict, field: str) -> None:
    response = server.post("/api/stream", body)
    assert response.status_code == 422
    assert field in json.dumps(response.json())


def test_invalid_json_gets_422(server: AgentClient) -> None:
    response = requests.post(
        f"{server.url}/api/stream", data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code == 422 and "json" in response.text.lower()


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.sage+json"])
def test_a_stream_body_is_read_whatever_its_json_content_type(server: AgentClient, content_type: str) -> None:
    """FastAPI reads a body as JSON when its type says JSON (and only then); so does the stream's fast path."""
    body = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
    untyped = requests.post(f"{server.url}/api/stream", data=body, timeout=30)
    assert untyped.status_code == 422 and untyped.json()["detail"][0]["loc"] == ["body"]
    response = requests.post(f"{server.url}/api/stream", data=body, headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Cache-Control"] == "no-store"
    lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["type"] == "stream_end" and lines[-1]["session_id"] == response.headers["X-Session-Id"]


def test_bodies_over_the_limit_get_413_declared_or_chunked(start_server) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(max_request_bytes=2000)
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    response = server.post("/api/stream", big)
    assert response.status_code == 413 and "SAGE_MAX_REQUEST_BYTES (2000 bytes)" in response.json()["detail"]

    url = urlparse(server.url)
    for path in ("/api/chat", "/api/stream"):  # the stream's own fast path reads the body too
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        payload = json.dumps(big).encode()
        for start in range(0, len(payload), 1000):
            piece = payload[start : start + 1000]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        try:
            assert conn.getresponse().status == 413, path
        finally:
            conn.close()
    assert server.post("/api/chat", {"messages": [{"role": "user", "content": "small"}]}).ok


def test_openapi_docs_and_health(server: AgentClient) -> None:
    spec = server.get("/openapi.json").json()
    assert {"/api/stream", "/api/chat", "/api/stream/resume/{session_id}", "/api/mcp/add", "/health"} <= set(
        spec["paths"]
    )
    assert server.get("/docs").ok
    assert server.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("db_type", ["memory", "file"])
def test_sqlite_session_stores(start_server, db_type: str) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(db_type=db_type)
    session = server.stream("hello")[-1]["session_id"]
    server.stream("again", session_id=session)
    assert [m["role"] for m in server.get(f"/api/sessions/{session}/messages").json()["messages"]] == [
        "user", "assistant", "user", "assistant"]  # fmt: skip
    assert server.state.store.engine.dialect.name == "sqlite"
    if db_type == "file":
        assert (Path(server.settings.data_dir) / "agent_sessions.sqlite3").exists()


def test_user_memory_is_shared_across_sessions_session_memory_is_not(server: AgentClient) -> None:
    remember = '[[tool:remember {"text": "Ada prefers answers in French."}]] note it'
    server.stream(remember, user_id="ada", session_id="s-one")
    recall = '[[tool:recall {"query": "which language does Ada like?"}]] what do you know'

    def recalled(**body: str) -> list[dict]:
        messages = server.stream(recall, user_id="ada", **body)
        result = next(m["content"] for m in messages if m["type"] == "tool_call_result")
        assert result["ok"], result
        return json.loads(result["result"])

    assert [m["text"] for m in recalled(session_id="s-two", memory_type="user")] == ["Ada prefers answers in French."]
    assert recalled(session_id="s-three", memory_type="session") == []
    assert recalled(session_id="s-one", memory_type="session")[0]["session_id"] == "s-one"
    other = server.stream(recall, user_id="bob", memory_type="user")
    assert json.loads(next(m for m in other if m["type"] == "tool_call_result")["content"]["result"]) == []


def test_sessions_can_live_in_another_sqlalchemy_database(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(session_database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    server.stream("hello")
    assert str(server.state.store.engine.url).endswith("elsewhere.db")
    assert len(server.get("/api/sessions").json()) == 1
