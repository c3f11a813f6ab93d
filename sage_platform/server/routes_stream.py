"""Agent runs over HTTP: stream, whole answer, resume, interrupt, and the session history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from sage_platform.agent.budget import ContextTooLong
from sage_platform.agent.coordination import GuidanceTooLong, Lease, ends_stream
from sage_platform.agent.llm import LLMNotConfigured, LLMOverrideRefused
from sage_platform.agent.loop import RequestRefused, TeamWithoutMembers, UnknownTools
from sage_platform.agent.messages import encode
from sage_platform.agent.profiles import UnknownAgents
from sage_platform.agent.requests import StreamRequest
from sage_platform.agent.runs import QuotaExceeded, Run, ServerBusy, SessionBusy
from sage_platform.agent.skills import UnknownSkills
from sage_platform.agent.tasks import TaskStore
from sage_platform.identity import Identity
from sage_platform.server.admission import ADMITTED_AT
from sage_platform.server.deps import Caller, audit, may_read, may_write, state_of

router = APIRouter(tags=["agent"])
NDJSON = "application/x-ndjson"
INTERRUPT_WAIT_S = 5.0  # how long an interrupt waits for the run to save and let go of its session
INLINE_PREPARE_CHARS = 4096  # below this, counting tokens costs less than handing the work to a thread


async def acting_as(request: Request, identity: Identity, body: StreamRequest) -> StreamRequest:
    """The body with the caller's user; a different ``user_id`` is refused unless an admin sent it, and a
    ``session_id`` of another user's session is answered as if it did not exist."""
    user = body.user_id or identity.user_id
    if user != identity.user_id:
        if not identity.admin:
            raise HTTPException(403, f"user_id {user!r} is not your key's user ({identity.user_id!r}); leave it out")
        audit.info("admin %s acts for user %s", identity.user_id, user)
    if body.session_id is not None:
        owner = await run_in_threadpool(state_of(request).store.session_owner, body.session_id)
        may_write(Identity(user, admin=identity.admin), owner, f"session {body.session_id}")
    return body.model_copy(update={"user_id": user})


async def start_run(request: Request, body: StreamRequest, identity: Identity) -> Run:
    agent = state_of(request).agent
    try:
        if _light(body):
            prepared = agent.prepare(body, admin=identity.admin)
        else:  # token counting of a large message, or reading skills, takes a while: off the event loop
            prepared = await run_in_threadpool(agent.prepare, body, admin=identity.admin)
        run = await agent.start(prepared)
        admitted = request.scope.get("state", {}).get(ADMITTED_AT)
        if admitted is not None:  # admission's measure of how long this process makes a run wait
            request.app.state.run_limit.observe_start(time.monotonic() - admitted)
        return run
    except LLMNotConfigured as error:
        raise HTTPException(503, str(error)) from error
    except (LLMOverrideRefused, RequestRefused) as error:
        raise HTTPException(403, str(error)) from error
    except (UnknownTools, ContextTooLong, UnknownSkills, UnknownAgents, TeamWithoutMembers) as error:
        raise HTTPException(400, str(error)) from error
    except ValidationError as error:  # an extra_mcp_config entry that is not a tool-server spec
        raise HTTPException(400, f"extra_mcp_config: {error}") from error
    except SessionBusy as error:
        raise HTTPException(409, str(error)) from error
    except ServerBusy as error:
        raise HTTPException(503, str(error), headers={"Retry-After": "1"}) from error
    except QuotaExceeded as error:
        raise HTTPException(429, str(error), headers={"Retry-After": "1"}) from error


def _light(body: StreamRequest) -> bool:
    """Whether preparing ``body`` is quick enough to do on the event loop: short text, no skill files."""
    if body.available_skills:
        return False
    chars = 0
    for message in body.messages:
        if not isinstance(message.content, str | None):
            return False
        chars += len(message.content or "")
    return chars < INLINE_PREPARE_CHARS


async def run_lines(run: Run, start: int, *, owner: bool) -> AsyncGenerator[bytes, None]:
    """The run's messages as NDJSON lines. The requester going away stops the run it started."""
    try:
        async for batch in run.batches(start):
            yield b"".join(encode(message) for message in batch)
    finally:
        if owner and not run.done:
            run.cancel("client disconnected")


@router.post("/stream", response_class=StreamingResponse, summary="Run the agent, streamed as NDJSON")
async def stream(request: Request, body: StreamRequest, identity: Caller) -> StreamingResponse:
    run = await start_run(request, await acting_as(request, identity, body), identity)
    headers = {"X-Session-Id": run.session_id, "Cache-Control": "no-store"}
    return StreamingResponse(run_lines(run, 0, owner=True), media_type=NDJSON, headers=headers)


@router.post("/chat", summary="Run the agent, answered whole")
async def chat(request: Request, body: StreamRequest, identity: Caller) -> dict[str, Any]:
    run = await start_run(request, await acting_as(request, identity, body), identity)
    try:
        messages = [m async for m in run.follow(0)]
    finally:
        if not run.done:
            run.cancel("client disconnected")
    final = next((m["content"] for m in reversed(messages) if m["type"] == "final_answer"), None)
    errors = [m["content"] for m in messages if m["type"] == "error"]
    return {"session_id": run.session_id, "final_answer": final, "errors": errors, "messages": messages}


@router.get("/stream/resume/{session_id}", response_class=StreamingResponse, summary="Replay a stream from N")
async def resume(
    request: Request, session_id: str, identity: Caller, last_index: int = Query(0, ge=0)
) -> StreamingResponse:
    """A running stream is followed live wherever it runs (this process, or another one through the
    database); a finished one is replayed from the store."""
    sage = state_of(request)
    run = sage.agent.runs.get(session_id)
    lease = None if run is not None else await sage.coordinator.lease_of(session_id)
    live = run or lease
    owner = live.user_id if live is not None else await run_in_threadpool(sage.store.session_owner, session_id)
    may_read(identity, owner, f"session {session_id}")
    if run is not None:
        return StreamingResponse(run_lines(run, last_index, owner=False), media_type=NDJSON)
    if lease is not None:
        return StreamingResponse(_follow_remote(request, lease, last_index), media_type=NDJSON)
    finished = await run_in_threadpool(sage.store.last_run, session_id)
    if finished is None:
        raise HTTPException(404, f"no stream recorded for session {session_id}")
    lines = [encode(m) for m in finished.events[last_index:]]
    return StreamingResponse(iter(lines), media_type=NDJSON)


async def _follow_remote(request: Request, lease: Lease, start: int) -> AsyncIterator[bytes]:
    """A stream running in another server process, as that process mirrors it; if it ended before
    mirroring, the rest comes from the stored run; if its process died, an error line says so."""
    sage = state_of(request)
    index = start
    async for lines in sage.coordinator.follow(lease, start):
        index += len(lines)
        yield "".join(f"{line}\n" for line in lines).encode()
        if ends_stream(lines[-1]):
            return
    finished = await run_in_threadpool(sage.store.last_run, lease.session_id)
    if finished is not None and finished.run_id == lease.run_id:
        yield b"".join(encode(m) for m in finished.events[index:])
        return
    yield encode({"type": "error", "session_id": lease.session_id,
                  "content": "the server process running this stream stopped before it ended"})  # fmt: skip


@router.post("/sessions/{session_id}/interrupt", summary="Stop a running stream")
async def interrupt(request: Request, session_id: str, identity: Caller) -> dict[str, Any]:
    """Stops the run wherever it runs; answers once the run has ended (saved, its session free) or after 5 s,
    so that a client's next message right after never finds the session still busy."""
    sage = state_of(request)
    run = sage.agent.runs.get(session_id)
    if run is not None:
        may_read(identity, run.user_id, f"running stream in session {session_id}")
        interrupted = run.cancel("interrupted by request")
        if interrupted and run.task is not None:
            await asyncio.wait({run.task}, timeout=INTERRUPT_WAIT_S)
        return {"session_id": session_id, "interrupted": interrupted}
    lease = await sage.coordinator.lease_of(session_id)
    may_read(identity, lease.user_id if lease else None, f"running stream in session {session_id}")
    if lease is None:
        raise HTTPException(404, f"session {session_id} has no running stream")
    return {"session_id": session_id, "interrupted": await sage.coordinator.interrupt(lease, INTERRUPT_WAIT_S)}


class Guidance(BaseModel):
    """A user message for a running stream (``content``; the original's ``message`` too)."""

    content: str | None = Field(None, min_length=1, max_length=100_000)
    message: str | None = Field(None, min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _has_text(self) -> Guidance:
        if not (self.content or self.message):
            raise ValueError("give the message as content")
        return self


@router.post("/sessions/{session_id}/inject-user-message", summary="Guide a running stream")
async def inject_user_message(request: Request, session_id: str, body: Guidance, identity: Caller) -> dict[str, Any]:
    """The running loop takes the message at its next step, streams it as ``user_input`` and keeps it in the
    session's history. Only the session's own user may guide it."""
    sage = state_of(request)
    text = body.content or body.message or ""
    run = sage.agent.runs.get(session_id)
    if run is not None:
        may_write(identity, run.user_id, f"running stream in session {session_id}")
        if not run.inject(text):
            raise HTTPException(409, f"the stream of session {session_id} has just ended; send a new request")
        return {"session_id": session_id, "injected": True}
    # A task's run (a Dagster process): through its table, so a retried attempt still gets it.
    tasks = TaskStore(sage.platform.db)
    task = await run_in_threadpool(tasks.unfinished_for_session, session_id)
    if task is not None:
        may_write(identity, task["user_id"], f"running stream in session {session_id}")
        await run_in_threadpool(tasks.guide, task["task_id"], text)
        return {"session_id": session_id, "injected": True, "task_id": task["task_id"]}
    lease = await sage.coordinator.lease_of(session_id)  # another server process: told through NOTIFY
    if lease is None:
        raise HTTPException(404, f"session {session_id} has no running stream")
    may_write(identity, lease.user_id, f"running stream in session {session_id}")
    try:
        await sage.coordinator.guide(lease, text)
    except GuidanceTooLong as error:
        raise HTTPException(413, str(error)) from error
    return {"session_id": session_id, "injected": True}


@router.get("/sessions", summary="Sessions, newest first")
async def sessions(
    request: Request, identity: Caller, user_id: str | None = None, limit: int = Query(100, ge=1, le=1000)
) -> list[dict[str, Any]]:
    """Your sessions. Admins see every user's, or one user's with ``user_id``."""
    sage = state_of(request)
    if not identity.admin:
        if user_id not in (None, identity.user_id):
            raise HTTPException(403, f"you may list only your own sessions (user {identity.user_id!r})")
        user_id = identity.user_id
    elif user_id != identity.user_id:
        audit.info("admin %s listed the sessions of %s", identity.user_id, user_id or "every user")
    rows = await run_in_threadpool(sage.store.list_sessions, user_id, limit)
    tasks = TaskStore(sage.platform.db)
    ids = [r["session_id"] for r in rows]
    runs = await run_in_threadpool(tasks.runs_of_sessions, ids)
    running = await sage.coordinator.running(ids)  # in any server process
    return [{**r, "running": r["session_id"] in running, "dagster_run_id": runs.get(r["session_id"])} for r in rows]


class SessionChange(BaseModel):
    title: str = Field(..., min_length=1, max_length=200)


@router.patch("/sessions/{session_id}", summary="Rename a session")
async def rename_session(request: Request, session_id: str, body: SessionChange, identity: Caller) -> dict[str, Any]:
    sage = state_of(request)
    owner = await run_in_threadpool(sage.store.session_owner, session_id)
    if owner is None:
        raise HTTPException(404, f"no session {session_id}")
    may_write(identity, owner, f"session {session_id}")
    await run_in_threadpool(sage.store.rename, session_id, body.title)
    return {"session_id": session_id, "title": body.title}


@router.delete("/sessions/{session_id}", summary="Delete a session, its history and its runs")
async def delete_session(request: Request, session_id: str, identity: Caller) -> dict[str, Any]:
    sage = state_of(request)
    owner = await run_in_threadpool(sage.store.session_owner, session_id)
    if owner is None:
        raise HTTPException(404, f"no session {session_id}")
    may_write(identity, owner, f"session {session_id}")
    if session_id in sage.agent.runs.active or await sage.coordinator.lease_of(session_id) is not None:
        raise HTTPException(409, f"session {session_id} has a running stream; stop it first")
    await run_in_threadpool(sage.store.delete, session_id)
    return {"deleted": session_id}


@router.get("/me", summary="Who the caller is, and what this server has")
async def me(request: Request, identity: Caller) -> dict[str, Any]:
    settings = state_of(request).settings
    return {"user_id": identity.user_id, "admin": identity.admin, "llm": settings.llm_configured,
            "tracing": settings.tracing_enabled, "trace_ui_url": settings.trace_ui_url,
            "dagster_url": f"http://{settings.dagster_host}:{settings.dagster_port}"}  # fmt: skip


@router.get("/memories", summary="Your memories (agent facts and coding-agent turns) nearest to a query")
async def memories(
    request: Request,
    identity: Caller,
    q: str = Query(..., min_length=1, max_length=2000),
    limit: int = Query(10, ge=1, le=50),
) -> list[dict[str, Any]]:
    memory = state_of(request).memory
    return await run_in_threadpool(lambda: memory().recall(identity.user_id, "", q, k=limit, memory_type="user"))


@router.get("/sessions/{session_id}/messages", summary="A session's history (OpenAI shape)")
async def session_messages(request: Request, session_id: str, identity: Caller) -> dict[str, Any]:
    sage = state_of(request)
    may_read(identity, await run_in_threadpool(sage.store.session_owner, session_id), f"session {session_id}")
    history = await run_in_threadpool(sage.store.history, session_id)
    return {
        "session_id": session_id,
        "summary": history.summary,
        "messages": [{"seq": m.seq, "tokens": m.tokens, **m.message} for m in history.messages],
    }


@router.get("/tools", summary="Tools the agent can call, with availability")
async def tools(request: Request) -> list[dict[str, Any]]:
    sage = state_of(request)
    listed = [t.public() for t in sage.agent.tools_for().values()]
    for server in sage.mcp.servers.values():
        if server.status != "connected":
            listed.extend({**t.public(), "available": False, "reason": server.reason} for t in server.tools.values())
    return listed
