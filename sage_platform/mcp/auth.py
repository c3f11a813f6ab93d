"""Bearer tokens for the memory server: ``SAGE_MCP_TOKENS`` or ``sage mcp token create``.

Only SHA-256 digests are kept (in memory for the environment's tokens, in ``mcp_tokens`` for issued
ones). A request to ``/mcp`` without a valid token gets 401 with a ``WWW-Authenticate: Bearer`` header
that points to the protected-resource metadata (RFC 9728), as MCP's authorization spec asks.

Usage::

    token = issue_token(db, "laptop")          # printed once, stored hashed
    app = BearerAuth(mcp_app, TokenVerifier.from_settings(settings, db))
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.hashing import text_hash

METADATA_PATH = "/.well-known/oauth-protected-resource"
OPEN_PATHS = ("/health", METADATA_PATH)


digest = text_hash  # sha256 hex: only digests of tokens are kept


def issue_token(db: Database, name: str) -> str:
    token = "sage_" + secrets.token_urlsafe(32)
    with db.connect() as conn:
        conn.execute("INSERT INTO mcp_tokens (token_hash, name) VALUES (%s, %s)", (digest(token), name))
    return token


class TokenVerifier:
    def __init__(self, tokens: list[str], db: Database | None, cache_seconds: float = 30.0) -> None:
        self._static = [digest(t) for t in tokens if t]
        self._db = db
        self._cache: dict[str, tuple[bool, float]] = {}
        self._cache_seconds = cache_seconds

    @classmethod
    def from_settings(cls, settings: Settings, db: Database | None) -> TokenVerifier:
        raw = settings.mcp_tokens.get_secret_value() if settings.mcp_tokens else ""
        return cls([t.strip() for t in raw.split(",")], db)

    def verify(self, token: str) -> bool:
        hashed = digest(token)
        if any(hmac.compare_digest(hashed, known) for known in self._static):
            return True
        if self._db is None:
            return False
        cached = self._cache.get(hashed)
        if cached and time.monotonic() - cached[1] < self._cache_seconds:
            return cached[0]
        with self._db.pool.connection() as conn:
            row = conn.execute(
                "UPDATE mcp_tokens SET last_used = now() WHERE token_hash = %s RETURNING 1", (hashed,)
            ).fetchone()
        self._cache[hashed] = (row is not None, time.monotonic())
        return row is not None


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

    def __init__(self, app: Any, verifier: TokenVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode()
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            import anyio

            if await anyio.to_thread.run_sync(self.verifier.verify, token.strip()):
                await self.app(scope, receive, send)
                return
            await self._deny(scope, send, "invalid_token", "the bearer token is not valid")
            return
        await self._deny(scope, send, None, "this server needs Authorization: Bearer <token> (SAGE_MCP_TOKENS)")

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
