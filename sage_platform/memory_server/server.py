"""The MCP memory server's tools, resources and prompt, on the official ``mcp`` SDK.

Usage::

    memory = MemoryService.from_settings(settings)
    app = build_server(memory)            # an MCPServer: .streamable_http_app() or .run("stdio")
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from sage_platform.bearer_auth import identity_in
from sage_platform.config import Settings
from sage_platform.identity import LOCAL, Identity
from sage_platform.memory_server.context import format_context, render
from sage_platform.memory_store import MemoryRejected, MemoryStore
from sage_platform.tokenization import TokenCounter

audit = logging.getLogger("sage.audit")
DEFAULT_SESSION = "default"
INSTRUCTIONS = (
    "Long-term memory for coding agents. Call save_conversation after each turn; call get_context with "
    "the user's new request to get relevant past turns to put in your prompt."
)
SessionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


@dataclass
class MemoryService:
    """The store plus the embedder: what the tools call, in worker threads."""

    store: MemoryStore
    embedder: Any
    counter: TokenCounter
    current: dict[str, str] = field(default_factory=dict)  # connection → its current session
    # Over HTTP with tokens every call carries the caller's identity; a call without one is refused. Over
    # stdio (and HTTP with --no-auth, loopback only) the caller is the local user, who sees everything.
    identities_required: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryService:
        from sage_platform.platform import Platform

        platform = Platform(settings)
        store = MemoryStore.for_settings(settings, platform.db, platform.embedder)
        return cls(store, platform.embedder, TokenCounter.local())

    def identity(self, ctx: Context | None) -> Identity:
        identity = identity_of(ctx)
        if identity is None:
            if self.identities_required:
                raise ToolError("no caller identity on this request: send Authorization: Bearer <token>")
            return LOCAL
        return identity

    def owner(self, ctx: Context | None) -> str:
        """The user whose sessions this call reads and writes (the local user's are ``local``)."""
        return self.identity(ctx).user_id

    def visible_to(self, ctx: Context | None) -> str | None:
        """The user whose memories this call may read: None (everyone's) for admins and the local user."""
        identity = self.identity(ctx)
        if not identity.admin:
            return identity.user_id
        if identity is not LOCAL:
            audit.info("admin %s read the memory counts of every user", identity.user_id)
        return None

    def session_for(self, ctx: Context | None, session_id: str | None) -> str:
        if session_id:
            return session_id
        return self.current.get(connection_of(ctx), DEFAULT_SESSION)

    def embed(self, text: str) -> tuple[Any, float]:
        began = time.perf_counter()
        vector = self.embedder.embed([text])[0]
        return vector, (time.perf_counter() - began) * 1000


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 2)


def build_server(memory: MemoryService) -> MCPServer:
    app = MCPServer("sage-memory", instructions=INSTRUCTIONS)
    store = memory.store

    @app.tool()
    async def save_conversation(
        user_input: Annotated[str, Field(description="What the user said in this turn.")],
        assistant_response: Annotated[str, Field(description="What the assistant answered.")],
        session_id: Annotated[
            SessionId | None, Field(description="Session; default: this connection's current one.")
        ] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Any JSON object stored with the memory.")] = None,
        idempotency_key: Annotated[
            str | None, Field(max_length=200, description="Retries with the same key store one memory.")
        ] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Save one conversation turn as a memory (embedded for later search). Retrying is safe: the same
        idempotency_key, or the same content in the same session within a few minutes, is stored once."""
        session, owner = memory.session_for(ctx, session_id), memory.owner(ctx)
        began = time.perf_counter()
        try:
            store.check(user_input, assistant_response)
        except MemoryRejected as error:
            raise ToolError(str(error)) from error
        digest = store.content_hash(session, user_input, assistant_response)
        duplicate = await anyio.to_thread.run_sync(store.find_duplicate, owner, session, digest, idempotency_key)
        embed_ms = 0.0
        if duplicate is None:
            vector, embed_ms = await anyio.to_thread.run_sync(memory.embed, f"{user_input}\n{assistant_response}")
            saved = await anyio.to_thread.run_sync(
                lambda: store.save(
                    user_input,
                    assistant_response,
                    user_id=owner,
                    session_id=session,
                    vector=vector,
                    metadata=metadata,
                    idempotency_key=idempotency_key,
                )  # fmt: skip
            )
        else:
            saved = duplicate
        total = _ms(began)
        return {
            "memory_id": saved.memory_id, "session_id": saved.session_id, "created": saved.created,
            "duplicate_of": saved.duplicate_of,
            "timings_ms": {"embedding": round(embed_ms, 2), "store": round(total - embed_ms, 2), "total": total},
        }  # fmt: skip

    @app.tool()
    async def get_context(
        query: Annotated[str, Field(description="The new request, or what you need to remember about.")],
        session_id: Annotated[SessionId | None, Field(description="Only this session; default: all sessions.")] = None,
        max_results: Annotated[int, Field(ge=1, le=100, description="At most this many memories.")] = 10,
        max_tokens: Annotated[int, Field(ge=50, le=100_000, description="Token budget of the returned text.")] = 2000,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Past memories most relevant to the query, formatted to paste into a prompt, within max_tokens
        (whole memories, most relevant first; among equally relevant ones, the newest first)."""
        began = time.perf_counter()
        vector, embed_ms = await anyio.to_thread.run_sync(memory.embed, query)
        hits = await anyio.to_thread.run_sync(
            lambda: store.search(query, vector, limit=max_results, user_id=memory.owner(ctx), session_id=session_id)
        )
        text, used = format_context(hits, memory.counter, max_tokens)
        total = _ms(began)
        return {
            "context": text, "memories": [h.memory_id for h in used], "tokens": memory.counter.count(text),
            "timings_ms": {"embedding": round(embed_ms, 2), "search": round(total - embed_ms, 2), "total": total},
        }  # fmt: skip

    @app.tool()
    async def search_memory(
        query: Annotated[str, Field(description="What to look for.")],
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        min_similarity: Annotated[float, Field(ge=-1.0, le=1.0, description="Cosine similarity floor.")] = 0.0,
        session_id: Annotated[SessionId | None, Field(description="Only this session; default: all.")] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Search memories (vector + full text, fused by rank). Each hit has its similarity and fused score."""
        vector, embed_ms = await anyio.to_thread.run_sync(memory.embed, query)
        hits = await anyio.to_thread.run_sync(
            lambda: store.search(
                query,
                vector,
                limit=limit,
                min_similarity=min_similarity,
                user_id=memory.owner(ctx),
                session_id=session_id,
            )
        )
        return {"hits": [h.as_dict() for h in hits], "timings_ms": {"embedding": round(embed_ms, 2)}}

    @app.tool()
    async def get_memory_stats(ctx: Context | None = None) -> dict[str, Any]:
        """Memory counts per session and in total, with the embedding model and its dimension."""
        return await anyio.to_thread.run_sync(store.stats, memory.visible_to(ctx))

    @app.tool()
    async def manage_session(
        action: Annotated[Literal["create", "switch", "info", "list"], Field(description="What to do.")],
        session_id: Annotated[SessionId | None, Field(description="For create (optional), switch and info.")] = None,
        title: Annotated[str, Field(max_length=200, description="For create.")] = "",
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Sessions: create one (and make it current), switch the current one, show one, or list them.
        Tools called without session_id use this connection's current session."""
        owner = memory.owner(ctx)
        if action == "list":
            return {"sessions": (await anyio.to_thread.run_sync(store.stats, owner))["sessions"]}
        if action == "create":
            info = await anyio.to_thread.run_sync(store.create_session, owner, session_id, title)
            _set_current(memory, ctx, info["session_id"])
            return {"current": info["session_id"], "session": info}
        target = memory.session_for(ctx, session_id)
        found: dict[str, Any] | None = await anyio.to_thread.run_sync(store.session_info, owner, target)
        if found is None:
            raise ToolError(f"no session {target!r}; create it with action=create, or list sessions with action=list")
        if action == "switch":
            _set_current(memory, ctx, target)
        return {"current": memory.session_for(ctx, None), "session": found}

    @app.tool()
    async def clear_session(
        session_id: Annotated[SessionId, Field(description="The session whose memories are deleted.")],
        confirm: Annotated[bool, Field(description="Must be true: deleting cannot be undone.")] = False,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Delete one of your sessions and all its memories. Requires confirm=true."""
        if not confirm:
            raise ToolError(f"refusing to delete session {session_id!r} without confirm=true")
        deleted = await anyio.to_thread.run_sync(store.clear_session, memory.owner(ctx), session_id)
        return {"session_id": session_id, "deleted_memories": deleted}

    # A template (its query part optional) rather than a static resource: only templates get the request's
    # context, and the list is the caller's own.
    @app.resource("memory://sessions{?limit}", mime_type="application/json", description="Your sessions and counts.")
    async def sessions_resource(ctx: Context, limit: str = "1000") -> dict[str, Any]:
        stats = await anyio.to_thread.run_sync(store.stats, memory.owner(ctx))
        return {**stats, "sessions": stats["sessions"][: int(limit) if limit.isdigit() else 1000]}

    @app.resource("memory://sessions/{session_id}", mime_type="text/plain", description="A session's memories.")
    async def session_resource(session_id: str, ctx: Context) -> str:
        hits = await anyio.to_thread.run_sync(store.session_memories, memory.owner(ctx), session_id)
        return "\n\n".join(render(h) for h in hits) or f"session {session_id} has no memories"

    @app.prompt()
    async def summarize_session(session_id: str, ctx: Context) -> str:
        """Ask the model to summarise one session's memories."""
        hits = await anyio.to_thread.run_sync(store.session_memories, memory.owner(ctx), session_id)
        turns = "\n\n".join(render(h) for h in reversed(hits)) or "(no memories)"
        return (
            f"Summarise the coding session {session_id} below: the goal, decisions made, files and commands "
            f"involved, and what is still open. Be concise.\n\n{turns}"
        )

    return app


def identity_of(ctx: Context | None) -> Identity | None:
    """The identity the bearer check put on this HTTP request; None over stdio or without auth."""
    request = None
    with contextlib.suppress(LookupError, AttributeError, ValueError):
        request = ctx.request_context.request if ctx is not None else None
    scope = getattr(request, "scope", None)
    return identity_in(scope) if isinstance(scope, dict) else None


def connection_of(ctx: Context | None) -> str:
    """The client connection: its MCP session id over HTTP; stdio has one client per process."""
    headers = None
    with contextlib.suppress(LookupError, AttributeError, ValueError):
        headers = ctx.headers if ctx is not None else None
    return (headers or {}).get("mcp-session-id", "stdio")


def _set_current(memory: MemoryService, ctx: Context | None, session_id: str) -> None:
    if len(memory.current) > 10_000:  # connections come and go; forget the oldest
        memory.current.pop(next(iter(memory.current)))
    memory.current[connection_of(ctx)] = session_id
