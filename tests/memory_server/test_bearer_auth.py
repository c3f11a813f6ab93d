"""The memory server's bearer check as ASGI middleware, byte for byte: what a client without a valid
token gets back (RFC 6750 / RFC 9728), and what the tools behind it see."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from sage_platform.bearer_auth import IDENTITY_SCOPE_KEY
from sage_platform.identity import Identity, KeyRing
from sage_platform.memory_server.auth import HINT, bearer_auth, resource_metadata

KEYS = KeyRing({hashlib.sha256(b"k-alice").hexdigest(): Identity("alice")}, None, audience="mcp")


def _call(path: str, headers: dict[bytes, bytes], **scope: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run one request through BearerAuth; returns (what was sent back, scopes the app behind it saw)."""
    seen: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    request = {"type": "http", "path": path, "headers": list(headers.items()), **scope}
    asyncio.run(bearer_auth(app, KEYS)(request, receive, send))
    return sent, seen


def _denial(sent: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    start, body = sent
    assert start["type"] == "http.response.start" and body["type"] == "http.response.body"
    headers = dict(start["headers"])
    assert int(headers[b"content-length"]) == len(body["body"])
    return start["status"], headers, json.loads(body["body"])


def test_no_token_gets_401_pointing_at_the_metadata() -> None:
    sent, seen = _call("/mcp", {b"host": b"mem.example:8080"}, scheme="https")
    status, headers, body = _denial(sent)
    assert not seen and status == 401 and headers[b"content-type"] == b"application/json"
    assert headers[b"www-authenticate"] == (
        b'Bearer resource_metadata="https://mem.example:8080/.well-known/oauth-protected-resource"'
    )
    description = f"this server needs Authorization: Bearer <key> ({HINT})"
    assert body == {"error": "unauthorized", "error_description": description, "detail": description}


@pytest.mark.parametrize("authorization", [b"Bearer k-bob", b"Bearer k-alice2", b"Basic k-alice"])
def test_a_wrong_token_gets_invalid_token(authorization: bytes) -> None:
    sent, seen = _call("/mcp", {b"authorization": authorization})
    status, headers, body = _denial(sent)
    assert not seen and status == 401
    if authorization.startswith(b"Basic"):  # not a bearer token at all: no error code, as RFC 6750 asks
        assert body["error"] == "unauthorized" and b"error=" not in headers[b"www-authenticate"]
        return
    description = f"the bearer key is not valid (unknown or revoked): {HINT}"
    assert body == {"error": "invalid_token", "error_description": description, "detail": description}
    assert headers[b"www-authenticate"] == (
        b'Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource", '
        b'error="invalid_token", error_description="' + description.encode() + b'"'
    )


def test_a_valid_token_passes_its_identity_and_only_that() -> None:
    forged = Identity("mallory", admin=True)
    sent, seen = _call("/mcp", {b"authorization": b"Bearer k-alice"}, **{IDENTITY_SCOPE_KEY: forged})
    assert not sent and seen[0][IDENTITY_SCOPE_KEY] == Identity("alice")
    _, seen = _call("/health", {}, **{IDENTITY_SCOPE_KEY: forged})  # open paths pass, without any identity
    assert seen and IDENTITY_SCOPE_KEY not in seen[0]
    denied, seen = _call("/mcp", {}, **{IDENTITY_SCOPE_KEY: forged})
    assert denied and not seen


def test_open_paths_and_other_protocols_pass_without_a_token() -> None:
    for path in ("/health", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        sent, seen = _call(path, {})
        assert not sent and [s["path"] for s in seen] == [path]
    lifespan: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        lifespan.append(scope)

    asyncio.run(bearer_auth(app, KEYS)({"type": "lifespan"}, None, None))
    assert lifespan == [{"type": "lifespan"}]


def test_the_metadata_document() -> None:
    scope = {"scheme": "https", "headers": [(b"host", b"mem.example")]}
    assert resource_metadata(scope) == {
        "resource": "https://mem.example/mcp",
        "resource_name": "Sage memory server",
        "bearer_methods_supported": ["header"],
        "authorization_servers": [],
    }
    assert resource_metadata({})["resource"] == "http://127.0.0.1/mcp"  # no Host header: loopback
