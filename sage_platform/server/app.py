"""The agent server's FastAPI application.

``POST /api/stream`` (NDJSON), ``POST /api/chat``, resume, interrupt, sessions, MCP server
management, ``GET /health``, the chat page at ``/`` and OpenAPI at ``/docs``.

Usage::

    app = create_app(Settings())
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from sage_platform import __version__
from sage_platform.agent.session_store import StoreUnavailable
from sage_platform.agent.state import AgentState
from sage_platform.bearer_auth import BearerAuth
from sage_platform.config import Settings
from sage_platform.identity import Identity, KeyRing
from sage_platform.package_files import CHAT_PAGE_DIR
from sage_platform.request_guard import RequestGuard
from sage_platform.server.admission import Admission, LoopLag, RunLimit
from sage_platform.server.deps import API_KEYS_HINT, caller, keys_required, state_of, store_unavailable
from sage_platform.server.envelope import ReplyWrapper
from sage_platform.server.fast_stream import FastStream
from sage_platform.server.limits import BodyLimitMiddleware
from sage_platform.server.routes_agents import router as agents_router
from sage_platform.server.routes_files import router as files_router
from sage_platform.server.routes_mcp import router as mcp_router
from sage_platform.server.routes_search import router as search_router
from sage_platform.server.routes_stream import router as stream_router
from sage_platform.server.routes_tasks import router as tasks_router

UPLOAD_OVERHEAD = 64 * 1024


def create_app(settings: Settings, state: AgentState | None = None) -> FastAPI:
    lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from sage_platform.agent.tracing import configure_tracing

        configure_tracing(settings)
        app.state.sage = state or AgentState.create(settings)
        await app.state.sage.start()
        try:
            yield
        finally:
            await lag.stop()
            await app.state.sage.close()
            from sage_platform.agent.tracing import flush_tracing

            flush_tracing()  # the last runs' spans leave before the process does

    app = FastAPI(
        title="Sage agent server",
        version=__version__,
        description="Streaming agent runs with tools (built-in and MCP), session and user memory.",
        lifespan=lifespan,
    )
    # The stream routes report each run's time to start into it; admission follows what it learns.
    app.state.run_limit = RunLimit(settings.max_active_streams, settings.max_queue_delay_ms / 1000)
    uploads = {"/api/files": settings.workspace_max_file_bytes + UPLOAD_OVERHEAD}  # multipart around the file
    app.add_middleware(FastStream)  # innermost: it serves POST /api/stream once every check below has passed
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes, path_limits=uploads)
    app.include_router(stream_router, prefix="/api", dependencies=[Depends(caller)])
    app.include_router(mcp_router, prefix="/api/mcp", dependencies=[Depends(caller)])
    app.include_router(tasks_router, prefix="/api/tasks", dependencies=[Depends(caller)])
    app.include_router(search_router, prefix="/api", dependencies=[Depends(caller)])
    app.include_router(agents_router, prefix="/api", dependencies=[Depends(caller)])
    app.include_router(files_router, prefix="/api/files", dependencies=[Depends(caller)])
    app.add_exception_handler(StoreUnavailable, store_unavailable)

    @app.get("/health", tags=["health"])
    async def health(request: Request) -> dict[str, Any]:
        sage = state_of(request)
        return {
            "status": "ok",
            "version": __version__,
            "active_streams": len(sage.agent.runs.active),  # in this process
            "process": os.getpid(),  # which worker answered (sage serve --workers N)
            "loop_lag_ms": round(lag.lag_s * 1000, 1),  # how far behind its work this process is
            "run_limit": int(request.app.state.run_limit.limit),  # runs at once admission now allows
            "mcp_servers": {name: s.status for name, s in sage.mcp.servers.items()},
            "auth": keys_required(sage),
            "database": settings.database_fingerprint,
            "session_store": "ok" if await run_in_threadpool(sage.store.reachable) is None else "unreachable",
            "workspace_storage": None
            if settings.workspace_s3_bucket is None
            else ("unreachable" if sage.workspace_problem else "ok"),
        }

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(CHAT_PAGE_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=CHAT_PAGE_DIR), name="static")
    # Every /api request needs a key once any exist (the same check as the memory server's).
    app.add_middleware(
        BearerAuth,
        keys=_LateKeys(app),
        hint=API_KEYS_HINT,
        protects=lambda path: path.startswith("/api"),
        required=lambda: keys_required(app.state.sage),
    )
    # Outermost: Host (without keys) and Origin (always) are checked before anything else runs.
    app.add_middleware(
        RequestGuard,
        bound_host=settings.host,
        keys_configured=lambda: keys_required(app.state.sage),
        allowed_hosts=settings.allowed_host_list,
        allowed_origins=settings.allowed_origin_list,
    )
    app.add_middleware(ReplyWrapper)  # a client that asked for {code, message, data} gets it for every reply
    # Outermost of all: past capacity a new run is refused before any other work is spent on it.
    app.add_middleware(
        Admission, running=lambda: len(app.state.sage.agent.runs.active), limit=app.state.run_limit, lag=lag
    )
    return app


class _LateKeys:
    """The server state's key ring, looked up per request: the state is built at startup, after the app."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def identify(self, secret: str) -> Identity | None:
        keys: KeyRing = self._app.state.sage.keys
        return keys.identify(secret)
