"""Bearer auth, protected-resource metadata, stdio transport and the `sage memory` commands."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from typing import Any

import pytest
import requests
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from sage_platform.cli import main
from sage_platform.db import Database
from sage_platform.identity import Identity, KeyRing, issue_key
from sage_platform.memory_server.server import MemoryService
from tests.memory_server.conftest import TOKEN, payload, with_client


def _initialize(url: str, headers: dict[str, str]) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    return requests.post(url, json=body, timeout=10,
                         headers={"Accept": "application/json, text/event-stream", **headers})  # fmt: skip


def test_missing_or_wrong_tokens_get_401_with_the_metadata_pointer(mcp_url: str) -> None:
    base = mcp_url.removesuffix("/mcp")
    missing = _initialize(mcp_url, {})
    assert missing.status_code == 401
    challenge = missing.headers["WWW-Authenticate"]
    assert challenge == f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource"'
    wrong = _initialize(mcp_url, {"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert _initialize(mcp_url, {"Authorization": "Basic " + TOKEN}).status_code == 401
    assert _initialize(mcp_url, {"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    metadata = requests.get(f"{base}/.well-known/oauth-protected-resource", timeout=10).json()
    assert metadata["resource"] == mcp_url and metadata["bearer_methods_supported"] == ["header"]
    assert requests.get(f"{base}/health", timeout=10).json()["dimension"] == 384


def test_the_official_client_with_env_and_issued_tokens(mcp_url: str, memory: MemoryService) -> None:
    issued = issue_key(memory.store.db, "laptop", audience="mcp")
    with memory.store.db.connect() as conn:
        stored = conn.execute("SELECT key_hash, user_id, audience FROM api_keys").fetchall()
    # Only the digest is kept, and it is the digest of this secret.
    assert stored == [(hashlib.sha256(issued.secret.encode()).hexdigest(), "laptop", "mcp")]
    for token in ("another-token", issued.secret):
        tools = with_client(mcp_url, lambda s: s.list_tools(), token=token)
        assert len(tools.tools) == 6
    assert _initialize(mcp_url, {"Authorization": "Bearer forged"}).status_code == 401
    agent_key = issue_key(memory.store.db, "laptop", audience="api")  # another server's key is not a token here
    assert _initialize(mcp_url, {"Authorization": f"Bearer {agent_key.secret}"}).status_code == 401


def test_stdio_transport_with_the_official_client(env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "sage_platform.cli", "mcp", "--stdio"],
        env={**{k: v for k, v in os.environ.items() if k.startswith(("SAGE_", "PATH", "HOME"))}, **env},
    )  # fmt: skip

    async def run() -> tuple[Any, Any, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            for question, answer in (
                ("Where do logs go?", "To .sage/logs/server.log."),
                ("Favourite colour?", "Blue."),
            ):
                saved = await session.call_tool(
                    "save_conversation", {"user_input": question, "assistant_response": answer}
                )
                assert not saved.is_error, saved.content
            found = await session.call_tool("search_memory", {"query": "log files location"})
            context = await session.call_tool("get_context", {"query": "where are the logs"})
            return tools, found, context

    tools, found, context = asyncio.run(run())
    assert len(tools.tools) == 6
    assert payload(found)["hits"][0]["user_input"] == "Where do logs go?"
    assert "server.log" in payload(context)["context"]


def test_sage_memory_status_search_and_clear(memory: MemoryService, capsys: pytest.CaptureFixture[str]) -> None:
    store = memory.store
    for question, answer in (("How are backups made?", "pg_dump nightly"), ("Lunch?", "Soup")):
        store.save(question, answer, user_id="alice", session_id="ops", vector=memory.embed(f"{question}\n{answer}")[0])
    assert main(["memory", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["total_memories"] == 2 and status["sessions"][0]["session_id"] == "ops"
    assert main(["memory", "search", "backup schedule", "--limit", "1"]) == 0
    assert "How are backups made?" in capsys.readouterr().out
    assert main(["memory", "clear", "--session", "ops"]) == 1
    assert "add --force" in capsys.readouterr().err
    assert main(["memory", "clear", "--session", "ops", "--force"]) == 0
    assert "deleted 2 memories of session ops (user alice)" in capsys.readouterr().out
    assert store.stats(None)["total_memories"] == 0


def test_token_create_list_revoke(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from sage_platform.config import Settings

    assert main(["mcp", "token", "create", "--user", "ci"]) == 0
    out = capsys.readouterr()
    token = out.out.strip().splitlines()[-1]
    key_id = re.search(r"issued (k_[0-9a-f]+) for ci \(user\)", out.err)[1]  # type: ignore[index]
    assert token.startswith("sage_") and key_id.startswith("k_")
    settings = Settings()
    db = Database.from_settings(settings)
    assert KeyRing.from_settings(settings, db, audience="mcp").identify(token) == Identity("ci", key_id=key_id)
    assert KeyRing.from_settings(settings, db, audience="api").identify(token) is None
    assert main(["mcp", "token", "list"]) == 0
    assert key_id in capsys.readouterr().out
    assert main(["mcp", "token", "revoke", key_id]) == 0
    assert KeyRing.from_settings(settings, db, audience="mcp").identify(token) is None
    assert main(["mcp", "token", "revoke", key_id]) == 1  # already revoked: said so
    assert "no active key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mcp", "token", "delete"])


def test_no_auth_is_refused_off_loopback(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "--no-auth", "--host", "0.0.0.0"]) == 1
    assert "only on a loopback address" in capsys.readouterr().err
