"""Attacks on the memory server through the official MCP client: every session is its user's."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from mcp import ClientSession

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.identity import KeyRing, issue_key, parse_key_list, revoke_key
from sage_platform.memory_server import create_http_app
from sage_platform.memory_server.server import MemoryService
from tests.mcp_tool_server import free_port, uvicorn_thread
from tests.memory_server.conftest import payload, with_client


@pytest.fixture
def memory(settings: Settings) -> MemoryService:
    return MemoryService.from_settings(settings)


@pytest.fixture
def url(env: dict[str, str], memory: MemoryService, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SAGE_MCP_TOKENS", "alice=token-alice,bob=token-bob")
    monkeypatch.setenv("SAGE_ADMIN_KEYS", "token-root")
    monkeypatch.setenv("SAGE_KEY_CACHE_SECONDS", "0")
    with uvicorn_thread(create_http_app(Settings(), memory), free_port()) as base:
        yield base + "/mcp"


def _save(session: ClientSession, text: str, session_id: str = "main", key: str | None = None):  # type: ignore[no-untyped-def]
    arguments = {"user_input": text, "assistant_response": f"noted: {text}", "session_id": session_id}
    if key:
        arguments["idempotency_key"] = key
    return session.call_tool("save_conversation", arguments)


def test_users_never_see_or_clear_each_others_sessions(url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def alice(session: ClientSession) -> None:
        await _save(session, "alice's deploy password rotation plan")

    async def bob(session: ClientSession) -> tuple:  # type: ignore[type-arg]
        await _save(session, "bob likes tabs")
        found = await session.call_tool(
            "search_memory", {"query": "deploy password rotation plan", "min_similarity": -1}
        )
        context = await session.call_tool("get_context", {"query": "password rotation"})
        listed = await session.call_tool("manage_session", {"action": "list"})
        stats = await session.call_tool("get_memory_stats", {})
        cleared = await session.call_tool("clear_session", {"session_id": "main", "confirm": True})
        return found, context, listed, stats, cleared

    with_client(url, alice, token="token-alice")
    found, context, listed, stats, cleared = with_client(url, bob, token="token-bob")
    assert [h["user_input"] for h in payload(found)["hits"]] == ["bob likes tabs"]
    assert "alice" not in payload(context)["context"]
    assert [(s["user_id"], s["session_id"]) for s in payload(listed)["sessions"]] == [("bob", "main")]
    assert payload(stats)["total_memories"] == 1
    assert payload(cleared)["deleted_memories"] == 1  # his own "main"; hers is another session

    async def alice_again(session: ClientSession) -> tuple:  # type: ignore[type-arg]
        found = await session.call_tool("search_memory", {"query": "deploy password rotation plan"})
        resource = await session.read_resource("memory://sessions/main")
        return found, resource

    found, resource = with_client(url, alice_again, token="token-alice")
    assert [h["user_input"] for h in payload(found)["hits"]] == ["alice's deploy password rotation plan"]
    assert "alice's deploy password" in resource.contents[0].text

    async def admin(session: ClientSession) -> object:
        return await session.call_tool("get_memory_stats", {})

    with caplog.at_level(logging.INFO, logger="sage.audit"):
        assert payload(with_client(url, admin, token="token-root"))["total_memories"] == 1  # admins see every user's
    assert "admin admin read the memory counts of every user" in caplog.text


def test_idempotency_keys_are_scoped_to_the_users_session(url: str) -> None:
    async def alice(session: ClientSession) -> list:  # type: ignore[type-arg]
        return [
            payload(await _save(session, "first", "one", key="retry-1")),
            payload(await _save(session, "first again", "one", key="retry-1")),  # a retry: the same memory
            payload(await _save(session, "other session", "two", key="retry-1")),
        ]

    async def bob(session: ClientSession) -> object:
        return payload(await _save(session, "bob's own", "one", key="retry-1"))

    first, retry, other = with_client(url, alice, token="token-alice")
    mine = with_client(url, bob, token="token-bob")
    assert first["created"] and not retry["created"] and retry["memory_id"] == first["memory_id"]
    assert other["created"] and other["memory_id"] != first["memory_id"]
    assert mine["created"] and mine["memory_id"] != first["memory_id"]  # another user's key hides nothing


def test_a_revoked_token_stops_working(url: str, memory: MemoryService) -> None:
    issued = issue_key(memory.store.db, "carol", audience="mcp")

    async def stats(session: ClientSession) -> object:
        return await session.call_tool("get_memory_stats", {})

    assert payload(with_client(url, stats, token=issued.secret))["total_memories"] == 0
    assert revoke_key(memory.store.db, issued.key_id)
    import requests

    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    refused = requests.post(url, json=body, timeout=10, headers={
        "Accept": "application/json, text/event-stream", "Authorization": f"Bearer {issued.secret}"})  # fmt: skip
    assert refused.status_code == 401 and "revoked" in refused.json()["error_description"]


def test_wrong_tokens_fill_a_bounded_cache_and_write_nothing(env: dict[str, str], settings: Settings) -> None:
    Database.from_settings(settings)  # migrated once, with writes
    # The key check reads through a connection that cannot write: any write on a miss would fail.
    read_only = Database(settings.database_url + "&options=-c%20default_transaction_read_only%3Don")  # type: ignore[operator]
    keys = KeyRing({}, read_only, audience="mcp", cache_seconds=60, cache_size=16)
    for attempt in range(200):
        assert keys.identify(f"sage_wrong_{attempt}") is None
    assert keys.cached_entries() == 16


def test_environment_tokens_name_their_users_and_admins() -> None:
    identities = parse_key_list("alice=a1, b2 ,bob=b1")
    assert sorted((i.user_id, i.admin) for i in identities.values()) == [
        ("alice", False),
        ("bob", False),
        ("default", False),
    ]
    with pytest.raises(ValueError, match="user name 'a b'"):
        parse_key_list("a b=x")
    with pytest.raises(ValueError, match="empty key"):
        parse_key_list("alice=")
