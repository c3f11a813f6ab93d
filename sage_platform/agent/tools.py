"""Tools the agent can call: the built-ins and those of registered MCP servers.

A tool is an async callable with a JSON schema. A tool that raises or times out gives its error
as the tool result; the agent loop goes on.

Usage::

    tools = builtin_tools(platform, memory)
    result = await run_tool(tools["knowledge_search"], {"query": "backups"}, context, timeout=30)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sage_platform.db.errors import NO_INDEX, is_missing_table
from sage_platform.retrieval.types import Hit, Retriever

if TYPE_CHECKING:
    from sage_platform.agent.memory import AgentMemory


SESSION_FILES = "files"  # the knowledge base of the session's workspace files


@dataclass(frozen=True)
class ToolContext:
    user_id: str
    session_id: str
    memory_type: Literal["session", "user"]
    knowledge_bases: tuple[str, ...] = ()


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    call: Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
    source: str = "builtin"
    available: bool = True
    reason: str | None = None  # why it is unavailable
    extra: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "source": self.source,
                "available": self.available, "reason": self.reason}  # fmt: skip


async def run_tool(
    tool: Tool, arguments: dict[str, Any], context: ToolContext, timeout: float, max_chars: int = 50_000
) -> tuple[bool, str]:
    """``(ok, result text)``; an exception or timeout is a failed result, never raised. A result over
    ``max_chars`` is cut there, with a note saying so: a tool cannot flood the context or the store."""
    try:
        result = await asyncio.wait_for(tool.call(arguments, context), timeout)
    except TimeoutError:
        return False, f"tool {tool.name} timed out after {timeout:g} s"
    except Exception as error:  # the model sees the failure and may try something else
        return False, f"tool {tool.name} failed: {type(error).__name__}: {error}"[:max_chars]
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    if len(text) > max_chars:
        text = text[:max_chars] + f"\n[cut: {len(text):,} characters, over SAGE_TOOL_RESULT_MAX_CHARS ({max_chars:,})]"
    return True, text


def hit_citation(hit: Hit) -> dict[str, Any]:
    return {"chunk_id": hit.chunk_id, "doc_id": hit.doc_id, "score": round(hit.score, 4), "text": hit.text,
            "source": hit.metadata.get("source"), "title": hit.metadata.get("title")}  # fmt: skip


def builtin_tools(
    default_retriever: str,
    retriever: Callable[[str], Retriever],
    memory: Callable[[], AgentMemory],
    session_files: Callable[[str, str, str, int], list[Hit]] | None = None,
) -> dict[str, Tool]:
    """``knowledge_search`` over the platform's retrievers, ``remember`` and ``recall`` over agent memory.

    ``retriever(name)`` and ``memory()`` build what they return on first use (both load the embedder).
    """

    async def knowledge_search(args: dict[str, Any], ctx: ToolContext) -> Any:
        query = str(args.get("query", ""))
        k = max(1, min(int(args.get("k", 5)), 20))
        results: list[dict[str, Any]] = []

        def search(name: str) -> list[Hit]:
            try:
                return retriever(name).search(query, k)
            except Exception as error:
                if is_missing_table(error):
                    raise RuntimeError(NO_INDEX) from error
                raise

        for name in ctx.knowledge_bases or (default_retriever,):
            if name == SESSION_FILES and session_files is not None:  # the session's own files
                hits = await asyncio.to_thread(session_files, ctx.user_id, ctx.session_id, query, k)
            else:
                hits = await asyncio.to_thread(search, name)
            results.extend({"knowledge_base": name, **hit_citation(h)} for h in hits)
        return {"query": query, "hits": results}

    async def remember(args: dict[str, Any], ctx: ToolContext) -> Any:
        text = str(args.get("text", ""))
        return await asyncio.to_thread(lambda: memory().remember(ctx.user_id, ctx.session_id, text))

    async def recall(args: dict[str, Any], ctx: ToolContext) -> Any:
        k = max(1, min(int(args.get("k", 5)), 20))
        query = str(args.get("query", ""))
        return await asyncio.to_thread(
            lambda: memory().recall(ctx.user_id, ctx.session_id, query, k=k, memory_type=ctx.memory_type)
        )

    def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}

    query = {"type": "string", "description": "What to look for, in natural language."}
    k = {"type": "integer", "minimum": 1, "maximum": 20, "description": "How many results (default 5)."}
    return {
        "knowledge_search": Tool(
            "knowledge_search",
            "Search the platform's knowledge bases. Returns passages with their doc_id for citation.",
            schema({"query": query, "k": k}, ["query"]),
            knowledge_search,
        ),
        "remember": Tool(
            "remember",
            "Store a fact about the user or task in long-term memory, for later conversations.",
            schema({"text": {"type": "string", "description": "The fact, as one sentence."}}, ["text"]),
            remember,
        ),
        "recall": Tool(
            "recall",
            "Recall facts stored earlier with `remember`, most relevant first.",
            schema({"query": query, "k": k}, ["query"]),
            recall,
        ),
    }
