"""Bearer keys for ``/api``: ``SAGE_API_KEYS`` is a comma-separated list; only hashes are kept.

Usage::

    keys = ApiKeys.from_settings(settings)
    keys.allows("Bearer s3cret")      # True / False; always True when auth is off
"""

from __future__ import annotations

import hmac

from sage_platform.config import Settings
from sage_platform.hashing import text_hash


class ApiKeys:
    def __init__(self, keys: list[str], *, disabled: bool = False) -> None:
        self._digests = [text_hash(k) for k in keys if k]
        self.enabled = bool(self._digests) and not disabled

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        raw = settings.api_keys.get_secret_value() if settings.api_keys else ""
        return cls([k.strip() for k in raw.split(",")], disabled=settings.no_auth)

    def allows(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        digest = text_hash(token.strip())
        return any(hmac.compare_digest(digest, known) for known in self._digests)
