"""Bearer tokens for the memory server: ``SAGE_MCP_TOKENS`` or ``sage mcp token create --user NAME``.

Tokens are keys of the ``mcp`` audience in the shared identity model (``sage_platform.identity``): each
belongs to a user, only digests are kept, and ``sage mcp token revoke`` ends one. A request to ``/mcp``
without a valid token gets 401 with a ``WWW-Authenticate: Bearer`` header that points to the
protected-resource metadata (RFC 9728), as MCP's authorization spec asks. A valid one puts the caller's
identity in the ASGI scope, where the tools read it: every session and memory is its user's.

Usage::

    issued = issue_key(db, "alice", audience="mcp")          # printed once, stored hashed
    app = bearer_auth(mcp_app, KeyRing.from_settings(settings, db, audience="mcp"))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sage_platform.bearer_auth import ASGIApp, BearerAuth
from sage_platform.identity import KeyRing

METADATA_PATH = "/.well-known/oauth-protected-resource"
OPEN_PATHS = ("/health", METADATA_PATH)
HINT = "SAGE_MCP_TOKENS, or one issued by `sage mcp token create`"


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


def metadata_challenge(scope: Mapping[str, Any]) -> str:
    """RFC 9728: the challenge points at the protected-resource metadata."""
    return f'resource_metadata="{base_url(scope)}{METADATA_PATH}"'


def bearer_auth(app: ASGIApp, keys: KeyRing) -> BearerAuth:
    """``/mcp`` needs a valid token; health and metadata stay open."""
    return BearerAuth(app, keys, hint=HINT, protects=lambda path: not path.startswith(OPEN_PATHS),
                      challenge=metadata_challenge)  # fmt: skip
