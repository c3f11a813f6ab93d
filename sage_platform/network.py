"""Binding rules: loopback by default; a server on any other address needs keys, or it does not start."""

from __future__ import annotations

import sys

from sage_platform.config import Settings
from sage_platform.request_guard import is_loopback

__all__ = ["check_bind", "is_loopback"]


def check_bind(
    host: str, *, keys_configured: bool, no_auth: bool, keys_setting: str = "SAGE_API_KEYS", flag: str = "--no_auth"
) -> None:
    """Refuse a non-loopback address without keys (or with ``--no_auth``); say so on loopback."""
    if no_auth and not is_loopback(host):
        raise ValueError(f"{flag} is allowed only on a loopback address, not {host}")
    if not keys_configured and not is_loopback(host):
        raise ValueError(
            f"refusing to serve on {host} without keys: anyone who can reach it could use it. "
            f"Set {keys_setting} (user=KEY,…) or issue a key with `sage keys create --user NAME`, or bind 127.0.0.1"
        )
    if no_auth or not keys_configured:
        print("no keys: serving loopback clients only, as the local user 'default' (an admin)", file=sys.stderr)


def check_server_bind(settings: Settings) -> None:
    """``sage serve``'s check, with the keys in the environment and the database."""
    from sage_platform.db import Database
    from sage_platform.identity import KeyRing

    keys = KeyRing.from_settings(settings, Database.from_settings(settings), audience="api")
    check_bind(settings.host, keys_configured=keys.configured(), no_auth=settings.no_auth)
