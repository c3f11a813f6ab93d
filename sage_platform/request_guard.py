"""Host and Origin checks in front of both servers, as one ASGI middleware.

- With no keys configured, only loopback clients are served, and only requests whose ``Host`` is a
  loopback name, the bound address or a name in ``SAGE_ALLOWED_HOSTS``: a web page that rebinds its own
  DNS name to 127.0.0.1 sends its own name as Host, and gets 400.
- A browser ``Origin`` that is not the server's own (nor in ``SAGE_ALLOWED_ORIGINS``) is refused on every
  state-changing request (POST, PUT, PATCH, DELETE), with keys or without: no cross-site writes.

Usage::

    app = RequestGuard(app, bound_host="127.0.0.1", keys_configured=keys.configured)
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from typing import Any

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """``example.com:8080`` → ``example.com``; ``[::1]:8080`` → ``::1``."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class RequestGuard:
    def __init__(
        self,
        app: Any,
        *,
        bound_host: str,
        keys_configured: Callable[[], bool],
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.bound_host = bound_host.lower()
        self.keys_configured = keys_configured
        self.allowed_hosts = {h.lower() for h in allowed_hosts if h}
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins if o}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host", "")
        refusal = self._refusal(scope, headers, host)
        if refusal is not None:
            status, message = refusal
            body = json.dumps({"detail": message}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: dict[str, Any], headers: dict[str, str], host: str) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin is not None and scope.get("method", "GET") not in SAFE_METHODS:
            own = f"{scope.get('scheme', 'http')}://{host}".lower()
            if origin.rstrip("/").lower() not in {own} | self.allowed_origins:
                return (
                    403,
                    f"cross-origin request from {origin} refused (allowed: this server's own origin, SAGE_ALLOWED_ORIGINS)",
                )
        if self.keys_configured():
            return None
        client = (scope.get("client") or ("", 0))[0]
        if not is_loopback(client):
            return 403, "no API keys are configured, so this server serves loopback clients only (set SAGE_API_KEYS)"
        name = host_name(host).lower()
        if not (is_loopback(name) or name == self.bound_host or name in self.allowed_hosts):
            return 400, f"Host {host!r} is not this server's (a loopback name, the bound address or SAGE_ALLOWED_HOSTS)"
        return None
