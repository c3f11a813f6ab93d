"""Binding rules: loopback by default; no unauthenticated server on a public address."""

from __future__ import annotations

import ipaddress
import sys

from sage_platform.config import Settings

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse ``--no_auth`` off loopback; warn when a public bind has no keys at all."""
    from sage_platform.server.auth import ApiKeys

    keys = ApiKeys.from_settings(settings)
    if settings.no_auth and not is_loopback(settings.host):
        raise ValueError(f"--no_auth is allowed only on a loopback address, not {settings.host}")
    if settings.no_auth:
        print("warning: --no_auth: /api accepts requests without a key (loopback only)", file=sys.stderr)
    elif not keys.enabled and not is_loopback(settings.host):
        print(f"warning: serving on {settings.host} without SAGE_API_KEYS: anyone who can reach it may use it",
              file=sys.stderr)  # fmt: skip
