"""The MCP memory server: ``sage mcp`` (streamable HTTP on 127.0.0.1:17800/mcp) or ``sage mcp --stdio``.

Usage::

    from sage_platform.memory_server import create_http_app, serve_http, serve_stdio
    serve_http(Settings())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sage_platform.config import Settings

if TYPE_CHECKING:
    from sage_platform.memory_server.server import MemoryService
    from sage_platform.request_guard import RequestGuard

__all__ = ["create_http_app", "serve_http", "serve_stdio"]


def create_http_app(settings: Settings, memory: MemoryService | None = None) -> RequestGuard:
    """The ASGI app: ``/mcp``, ``/health`` and the protected-resource metadata, behind bearer auth."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from sage_platform.identity import KeyRing
    from sage_platform.memory_server.auth import METADATA_PATH, bearer_auth, resource_metadata
    from sage_platform.memory_server.server import MemoryService, build_server
    from sage_platform.request_guard import RequestGuard

    memory = memory or MemoryService.from_settings(settings)
    memory.identities_required = not settings.mcp_no_auth
    server = build_server(memory)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": memory.store.model, "dimension": memory.store.dim})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(resource_metadata(request.scope))

    # The SDK's custom_route decorator is untyped: register the typed handlers through it directly.
    for path, handler in (("/health", health), (METADATA_PATH, metadata), (METADATA_PATH + "/mcp", metadata)):
        server.custom_route(path, methods=["GET"])(handler)

    app = server.streamable_http_app(
        host=settings.mcp_host, max_request_body_size=max(4 * settings.memory_max_chars + 65_536, 8_000_000)
    )
    guarded = (
        app
        if settings.mcp_no_auth
        else bearer_auth(app, KeyRing.from_settings(settings, memory.store.db, audience="mcp"))
    )
    # Tokens are always required (or --no-auth on loopback): the Host check applies with --no-auth only.
    return RequestGuard(
        guarded,
        bound_host=settings.mcp_host,
        keys_configured=lambda: not settings.mcp_no_auth,
        allowed_hosts=settings.allowed_host_list,
        allowed_origins=settings.allowed_origin_list,
    )


def _quiet_sdk_logs() -> None:
    """The SDK logs every session it opens and closes at INFO; keep warnings and errors only."""
    import logging

    logging.getLogger("mcp").setLevel(logging.WARNING)


def serve_http(settings: Settings) -> None:
    import uvicorn

    _quiet_sdk_logs()
    uvicorn.run(create_http_app(settings), host=settings.mcp_host, port=settings.mcp_port, log_level="warning")


def serve_stdio(settings: Settings) -> None:
    """MCP over stdin/stdout for `claude mcp add sage -- sage mcp --stdio`; logs go to stderr only."""
    from sage_platform.memory_server.server import MemoryService, build_server

    _quiet_sdk_logs()
    build_server(MemoryService.from_settings(settings)).run("stdio")
