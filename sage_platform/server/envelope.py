"""The original server's reply wrapper, ``{"code", "message", "data"}``, for the clients that ask for it.

A client asks with the header ``X-Sage-Envelope: 1`` or the query flag ``?envelope=1``. JSON replies are
then wrapped: ``code`` is the HTTP status, ``message`` is ``"success"`` or the error's ``detail``, ``data``
is the reply itself (``null`` for errors). The HTTP status stays as it is; streams are never wrapped.
Without either flag nothing changes.

Usage::

    app.add_middleware(ReplyWrapper)
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-sage-envelope"
TRUE = ("1", "true", "yes")


def wants_envelope(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode("latin-1").strip().lower() in TRUE
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return any(v.lower() in TRUE for v in query.get("envelope", ()))


def wrap(status: int, body: bytes) -> bytes:
    try:
        reply: Any = json.loads(body or b"null")
    except ValueError:
        reply = body.decode("utf-8", "replace")
    ok = status < 400
    detail = reply.get("detail") if isinstance(reply, dict) else None
    message = "success" if ok else (detail if isinstance(detail, str) else json.dumps(detail or reply))
    return json.dumps({"code": status, "message": message, "data": reply if ok else None}).encode()


class ReplyWrapper:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_envelope(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                if not content_type.startswith(b"application/json"):
                    start = None
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = wrap(start["status"], b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
