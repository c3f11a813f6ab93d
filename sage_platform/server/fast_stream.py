"""``POST /api/stream`` without FastAPI's routing, dependency solving and ``StreamingResponse``.

At hundreds of runs a second those cost about a millisecond of CPU per request (more than a run's
own database work): ``StreamingResponse`` starts a task group of two tasks for every stream, to
notice a client that leaves. This ASGI layer, innermost of the app's middlewares (so admission,
Host/Origin checks, keys and the body limit have all run), serves the route the same way with one
waiting task, and hands everything it does not serve to the route itself: a body that is not JSON
or does not validate (the route answers its 422), or any other path.

The stream's lines, headers, errors and disconnect behaviour are the route's: the same functions
start the run and render refusals.

Usage::

    app.add_middleware(FastStream)    # first, so that it runs inside every other middleware
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.exception_handlers import http_exception_handler
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sage_platform.agent.requests import StreamRequest
from sage_platform.agent.runs import Run
from sage_platform.agent.session_store import StoreUnavailable
from sage_platform.server.deps import caller, store_unavailable
from sage_platform.server.routes_stream import NDJSON, acting_as, run_lines, start_run

PATH = "/api/stream"


class FastStream:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or not _json(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left (or the body limit refused it) before the body was whole
        try:
            request_body = StreamRequest.model_validate_json(body)
        except ValidationError:
            await self.app(scope, _replaying(body, receive), send)  # the route's own 422
            return
        request = Request(scope, receive)
        try:
            identity = caller(request)
            run = await start_run(request, await acting_as(request, identity, request_body), identity)
        except HTTPException as error:
            await (await http_exception_handler(request, error))(scope, receive, send)
            return
        except StoreUnavailable as error:
            await (await store_unavailable(request, error))(scope, receive, send)
            return
        await _stream(run, receive, send)


async def _stream(run: Run, receive: Receive, send: Send) -> None:
    """The run's messages as NDJSON; the client going away stops the run, as the route's stream does."""
    headers = [(b"content-type", NDJSON.encode()), (b"x-session-id", run.session_id.encode()),
               (b"cache-control", b"no-store")]  # fmt: skip
    watcher = asyncio.ensure_future(_stop_on_disconnect(run, receive))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # The route's own lines; closing them stops the run if it has not ended.
        async with contextlib.aclosing(run_lines(run, 0, owner=True)) as lines_of_run:
            async for lines in lines_of_run:
                if watcher.done():
                    return
                await send({"type": "http.response.body", "body": lines, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()


async def _stop_on_disconnect(run: Run, receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    run.cancel("client disconnected")


def _json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """``receive`` for the route: the body already read, then whatever the connection says next."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return dict(await receive())
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
