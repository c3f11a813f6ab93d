"""A request-body limit as plain ASGI middleware: bodies over ``max_bytes`` get 413 before any handler.

Both a declared ``Content-Length`` and the bytes actually received are checked, so a chunked
upload cannot slip past the limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class BodyLimitMiddleware:
    def __init__(self, app: Any, max_bytes: int, path_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})  # exact paths with their own limit (file uploads)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS") or (declared is not None and declared.isdigit()):
            # No body, or one the server reads no further than its declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        rejected = False

        async def limited_receive() -> Any:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    # A JSON route answers only once it has the whole body: nothing was sent yet.
                    rejected = True
                    await self._reject(send, limit)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def guarded_send(message: Any) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send: Any, limit: int) -> None:
        setting = "SAGE_MAX_REQUEST_BYTES" if limit == self.max_bytes else "SAGE_WORKSPACE_MAX_FILE_BYTES"
        body = json.dumps({"detail": f"request body is larger than {setting} ({limit} bytes)"}).encode()
        await send(
            {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})
