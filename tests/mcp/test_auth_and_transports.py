"""Bearer auth, protected-resource metadata, stdio transport and the `sage memory` commands."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
import requests
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from sage_platform.cli import main
from sage_platform.db import Database
from sage_platform.mcp.auth import issue_token
from sage_platform.mcp.server import MemoryService
from tests.mcp.conftest import TOKEN, payload, with_client


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
    issued = issue_token(memory.store.db, "laptop")
    with memory.store.db.connect() as conn:
        stored = conn.execute("SELECT token_hash, name FROM mcp_tokens").fetchall()
    assert stored and stored[0][1] == "laptop" and issued not in stored[0][0]  # only the hash is kept
    for token in ("another-token", issued):
        tools = with_client(mcp_url, lambda s: s.list_tools(), token=token)
        assert len(tools.tools) == 6
    with pytest.raises(BaseException):  # noqa: B017 (the SDK wraps the 401 in exception groups)
        with_client(mcp_url, lambda s: s.list_tools(), token="forged")


def test_stdio_transport_with_the_official_client(env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "sage_platform.cli", "mcp", "--stdio"],
        env={**{k: v for k, v in os.environ.items() if k.startswith(("SAGE_", "PATH", "HOME"))}, **env},
    )  # fmt: skip

    async def run() -> tuple[Any, Any, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            await session.call_tool("save_conversation", {"user_input": "Where do logs go?",
                                                          "assistant_response": "To .sage/logs/server.log."})  # fmt: skip
            await session.call_tool("save_conversation", {"user_input": "Favourite colour?",
                                                          "assistant_response": "Blue."})  # fmt: skip
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
        store.save(question, answer, session_id="ops", vector=memory.embed(f"{question}\n{answer}")[0])
    assert main(["memory", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["total_memories"] == 2 and status["sessions"][0]["session_id"] == "ops"
    assert main(["memory", "search", "backup schedule", "--limit", "1"]) == 0
    assert "How are backups made?" in capsys.readouterr().out
    assert main(["memory", "clear", "--session", "ops"]) == 1
    assert "add --force" in capsys.readouterr().err
    assert main(["memory", "clear", "--session", "ops", "--force"]) == 0
    assert "deleted 2 memories" in capsys.readouterr().out
    assert store.stats()["total_memories"] == 0


def test_token_create_prints_a_token_that_works(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from sage_platform.config import Settings
    from sage_platform.mcp.auth import TokenVerifier

    assert main(["mcp", "token", "create", "--name", "ci"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sage_")
    settings = Settings()
    assert TokenVerifier.from_settings(settings, Database.from_settings(settings)).verify(token)
    assert main(["mcp", "token", "delete"]) == 2


def test_no_auth_is_refused_off_loopback(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "--no-auth", "--host", "0.0.0.0"]) == 2
    assert "only on a loopback address" in capsys.readouterr().err
