"""Who is calling: bearer keys that belong to users, some with the admin role, for both servers.

One model serves the agent server (audience ``api``) and the memory server (audience ``mcp``). Keys
come from the ``api_keys`` table (``sage keys create --user NAME [--admin]``, ``sage mcp token create
--user NAME``) and, for bootstrap and containers, from the environment: ``SAGE_API_KEYS="alice=KEY,
bob=KEY"`` (``SAGE_MCP_TOKENS`` for the memory server) and ``SAGE_ADMIN_KEYS="KEY,…"``. Only SHA-256
digests are kept; a key is shown once, when it is issued.

Usage::

    keys = KeyRing.from_settings(settings, db, audience="api")
    identity = keys.identify("sage_…")       # Identity("alice", admin=False, key_id="k_…") or None
    issued = issue_key(db, "bob", audience="api", admin=True)   # IssuedKey(key_id, secret)
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.hashing import text_hash

Audience = Literal["api", "mcp"]
AUDIENCES: tuple[Audience, ...] = ("api", "mcp")
KEY_PREFIX = "sage_"
# The single user of a setup without named users: a bare key in SAGE_API_KEYS / SAGE_MCP_TOKENS, the
# caller on loopback when no key is configured, the memory server over stdio, and data from before users.
DEFAULT_USER = "default"
_USER_PATTERN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-")


@dataclass(frozen=True)
class Identity:
    """The user a request acts for. ``key_id`` is None for environment keys and the local user."""

    user_id: str
    admin: bool = False
    key_id: str | None = None

    def owns(self, owner: str | None) -> bool:
        """May this identity read or change something ``owner`` owns? Admins may read everything."""
        return self.admin or owner == self.user_id


LOCAL = Identity(DEFAULT_USER, admin=True)  # the machine's own user: loopback, no keys configured


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str
    user_id: str
    admin: bool
    audience: Audience


def digest(secret: str) -> str:
    return text_hash(secret)


def check_user_name(user_id: str) -> str:
    if not user_id or len(user_id) > 128 or not set(user_id) <= _USER_PATTERN:
        raise ValueError(f"user name {user_id!r} must be 1-128 letters, digits or _ . @ -")
    return user_id


def parse_key_list(raw: str, *, admin_digests: frozenset[str] = frozenset()) -> dict[str, Identity]:
    """``"alice=KEY,bob=KEY,KEY"`` → {digest: Identity}; a bare key belongs to the user ``default``."""
    identities: dict[str, Identity] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        user, sep, secret = part.partition("=")
        if not sep:
            user, secret = DEFAULT_USER, part
        user, secret = user.strip(), secret.strip()
        if not secret:
            raise ValueError(f"an entry for user {user!r} has an empty key")
        hashed = digest(secret)
        identities[hashed] = Identity(check_user_name(user), admin=hashed in admin_digests)
    return identities


def issue_key(db: Database, user_id: str, *, audience: Audience = "api", admin: bool = False) -> IssuedKey:
    """A new key for ``user_id``; its secret is returned once and only its digest is stored."""
    check_user_name(user_id)
    key_id = "k_" + secrets.token_hex(6)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO api_keys (key_id, key_hash, user_id, admin, audience) VALUES (%s, %s, %s, %s, %s)",
            (key_id, digest(secret), user_id, admin, audience),
        )
    return IssuedKey(key_id, secret, user_id, admin, audience)


def list_keys(db: Database, *, audience: Audience | None = None) -> list[dict[str, Any]]:
    """Every stored key, revoked ones too, without digests."""
    with db.connect() as conn:
        cursor = conn.execute(
            "SELECT key_id, user_id, admin, audience, created_at, last_used, revoked_at FROM api_keys"
            " WHERE %(audience)s::text IS NULL OR audience = %(audience)s ORDER BY created_at, key_id",
            {"audience": audience},
        )
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def revoke_key(db: Database, key_id: str) -> bool:
    """Revoke a key by its id; False if no such active key."""
    with db.connect() as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL RETURNING 1", (key_id,)
        ).fetchone()
    return row is not None


class KeyRing:
    """Resolves bearer secrets to identities for one audience.

    Environment keys are checked in memory. Stored keys are looked up in ``api_keys``; answers (hits
    and misses) are cached for ``cache_seconds`` in a bounded LRU, so a flood of wrong keys costs one
    read each at most and writes nothing. A revoked key stops working within ``cache_seconds``.
    """

    def __init__(
        self,
        static: dict[str, Identity],
        db: Database | None,
        *,
        audience: Audience,
        cache_seconds: float = 5.0,
        cache_size: int = 4096,
    ) -> None:
        self._static = static
        self._db = db
        self.audience = audience
        self._cache: OrderedDict[str, tuple[Identity | None, float]] = OrderedDict()
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._stored_any: tuple[bool, float] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, db: Database | None, *, audience: Audience) -> KeyRing:
        admin_raw = _secret(settings.admin_keys)
        admins = frozenset(digest(k.strip()) for k in admin_raw.split(",") if k.strip())
        raw = _secret(settings.api_keys if audience == "api" else settings.mcp_tokens)
        static = parse_key_list(raw, admin_digests=admins)
        for hashed in admins - static.keys():  # an admin key not listed with a user acts as "admin"
            static[hashed] = Identity("admin", admin=True)
        return cls(static, db, audience=audience, cache_seconds=settings.key_cache_seconds)

    def configured(self) -> bool:
        """Is any key configured for this audience (environment, or an active stored key)?"""
        if self._static:
            return True
        if self._db is None:
            return False
        now = time.monotonic()
        if self._stored_any is None or now - self._stored_any[1] > self._cache_seconds:
            with self._db.pool.connection() as conn:
                row = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM api_keys WHERE audience = %s AND revoked_at IS NULL)",
                    (self.audience,),
                ).fetchone()
            self._stored_any = (bool(row and row[0]), now)
        return self._stored_any[0]

    def identify(self, secret: str) -> Identity | None:
        hashed = digest(secret)
        for known, static in self._static.items():
            if hmac.compare_digest(hashed, known):
                return static
        if self._db is None:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(hashed)
            if cached is not None and now - cached[1] < self._cache_seconds:
                self._cache.move_to_end(hashed)
                return cached[0]
        identity = self._lookup(hashed)
        with self._lock:
            self._cache[hashed] = (identity, now)
            self._cache.move_to_end(hashed)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return identity

    def _lookup(self, hashed: str) -> Identity | None:
        assert self._db is not None
        with self._db.pool.connection() as conn:
            row = conn.execute(
                "SELECT key_id, user_id, admin FROM api_keys WHERE key_hash = %s AND audience = %s"
                " AND revoked_at IS NULL",
                (hashed, self.audience),
            ).fetchone()
            if row is None:
                return None  # a miss writes nothing
            conn.execute(  # at most once a minute per key: a busy key must not write on every request
                "UPDATE api_keys SET last_used = now() WHERE key_id = %s"
                " AND (last_used IS NULL OR last_used < now() - interval '1 minute')",
                (row[0],),
            )
        return Identity(row[1], admin=bool(row[2]), key_id=row[0])

    def cached_entries(self) -> int:
        return len(self._cache)


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer …`` header, or None."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""
