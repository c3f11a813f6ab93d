"""One bearer check for both servers, as ASGI middleware.

A protected request needs ``Authorization: Bearer <key>`` whose key the ``KeyRing`` knows (checked in a
worker thread: it may read the database); the caller's ``Identity`` then goes into the ASGI scope
under ``IDENTITY_SCOPE_KEY``, where routes and tools read it. Only this check sets that key: a value a
client smuggled in is removed first. A missing or wrong key gets 401 with a JSON body and a
``WWW-Authenticate: Bearer`` challenge (RFC 6750); the memory server's points at its protected-resource
metadata (RFC 9728).

Usage::

    app = BearerAuth(app, keys, protects=lambda path: path.startswith("/api"), hint="SAGE_API_KEYS")
    identity = identity_in(request.scope)      # None: the path is open, or no keys are required
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol

from sage_platform.identity import Identity, bearer_secret

IDENTITY_SCOPE_KEY = "sage.identity"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
Challenge = Callable[[Mapping[str, Any]], str]  # the challenge's first parameter, e.g. realm="sage"


def sage_realm(scope: Mapping[str, Any]) -> str:
    return 'realm="sage"'


class KeyLookup(Protocol):
    """A ``KeyRing``, or anything else that finds the identity of a key."""

    def identify(self, secret: str) -> Identity | None: ...


def identity_in(scope: Mapping[str, Any]) -> Identity | None:
    identity = scope.get(IDENTITY_SCOPE_KEY)
    return identity if isinstance(identity, Identity) else None


class BearerAuth:
    def __init__(
        self,
        app: ASGIApp,
        keys: KeyLookup,
        *,
        hint: str,
        protects: Callable[[str], bool] = lambda path: True,
        required: Callable[[], bool] = lambda: True,
        challenge: Challenge = sage_realm,
    ) -> None:
        self.app, self.keys, self.hint = app, keys, hint
        self.protects, self.required, self.challenge = protects, required, challenge

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        scope.pop(IDENTITY_SCOPE_KEY, None)  # only this check may set it
        if scope["type"] != "http" or not self.protects(scope["path"]) or not self.required():
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        secret = bearer_secret(header)
        if secret is None:
            await self._deny(scope, send, None, f"this server needs Authorization: Bearer <key> ({self.hint})")
            return
        import anyio

        identity = await anyio.to_thread.run_sync(self.keys.identify, secret)
        if identity is None:
            await self._deny(
                scope, send, "invalid_token", f"the bearer key is not valid (unknown or revoked): {self.hint}"
            )
            return
        scope[IDENTITY_SCOPE_KEY] = identity
        await self.app(scope, receive, send)

    def _challenge(self, scope: Scope, error: str | None, description: str) -> str:
        value = f"Bearer {self.challenge(scope)}"
        return value + (f', error="{error}", error_description="{description}"' if error else "")

    async def _deny(
        self, scope: Scope, send: Callable[[Message], Awaitable[None]], error: str | None, description: str
    ) -> None:
        body = json.dumps(
            {"error": error or "unauthorized", "error_description": description, "detail": description}
        ).encode()
        await send(
            {"type": "http.response.start", "status": 401,
             "headers": [(b"content-type", b"application/json"),
                         (b"www-authenticate", self._challenge(scope, error, description).encode()),
                         (b"content-length", str(len(body)).encode())]}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})
