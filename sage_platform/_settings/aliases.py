"""Environment spellings of a setting besides ``SAGE_<NAME>``."""

from __future__ import annotations

from pydantic import AliasChoices


def also(name: str, *original: str) -> AliasChoices:
    """``SAGE_<NAME>`` and the original server's other spellings of the same variable."""
    return AliasChoices(f"SAGE_{name.upper()}", *original)
