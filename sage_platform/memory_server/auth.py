"""Bearer tokens for the memory server: ``SAGE_MCP_TOKENS`` or ``sage mcp token create --user NAME``.

Tokens are keys of the ``mcp`` audience in the shared identity model (``sage_platform.identity``): each
belongs to a user, only digests are kept, and ``sage mcp token revoke`` ends one. A request to ``/mcp``
without a valid token gets 401 with a ``WWW-Authenticate: Bearer`` header that points to the
protected-resource metadata (RFC 9728), as MCP's authorization spec asks. A valid one puts the caller's
identity in the ASGI scope, where the tools read it: every session and memory is its user's.

Usage::

    issued = issue_key(db, "alice", audience="mcp")          # printed once, stored hashed
    app = BearerAuth(mcp_app, KeyRing.from_settings(settings, db, audience="mcp"))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sage_platform.identity import KeyRing, bearer_secret
from sage_platform.memory_server.server import IDENTITY_SCOPE_KEY

METADATA_PATH = "/.well-known/oauth-protected-resource"
OPEN_PATHS = ("/health", METADATA_PATH)


def base_url(scope: Mapping[str, Any]) -> str:
    host = dict(scope.get("headers") or []).get(b"host", b"127.0.0.1").decode()
    return f"{scope.get('scheme', 'http')}://{host}"


def resource_metadata(scope: Mapping[str, Any]) -> dict[str, Any]:
    base = base_url(scope)
    return {
        "resource": f"{base}/mcp",
        "resource_name": "Sage memory server",
        "bearer_methods_supported": ["header"],
        "authorization_servers": [],  # tokens are issued by `sage mcp token create`, not by OAuth
    }


class BearerAuth:
    """ASGI middleware: ``/mcp`` needs a valid bearer token; health and metadata stay open."""

    def __init__(self, app: Any, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        scope.pop(IDENTITY_SCOPE_KEY, None)  # only this check may set it
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        secret = bearer_secret(header)
        if secret is None:
            await self._deny(scope, send, None, "this server needs Authorization: Bearer <token> (SAGE_MCP_TOKENS)")
            return
        import anyio

        identity = await anyio.to_thread.run_sync(self.keys.identify, secret)
        if identity is None:
            await self._deny(scope, send, "invalid_token", "the bearer token is not valid (unknown or revoked)")
            return
        scope[IDENTITY_SCOPE_KEY] = identity
        await self.app(scope, receive, send)

    async def _deny(self, scope: dict[str, Any], send: Any, error: str | None, description: str) -> None:
        challenge = f'Bearer resource_metadata="{base_url(scope)}{METADATA_PATH}"'
        if error:
            challenge += f', error="{error}", error_description="{description}"'
        body = json.dumps({"error": error or "unauthorized", "error_description": description}).encode()
        await send(
            {"type": "http.response.start", "status": 401,
             "headers": [(b"content-type", b"application/json"), (b"www-authenticate", challenge.encode()),
                         (b"content-length", str(len(body)).encode())]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})
