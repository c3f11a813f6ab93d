"""Dagster resources. The one resource, ``sage``, hands assets a configured ``Platform``.

Each field overrides the matching ``SAGE_*`` setting when given (run config or code), so the
precedence stays: explicit value, then environment, then default.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr

from sage_platform.config import Settings
from sage_platform.platform import Platform

_PLATFORMS: dict[tuple[tuple[str, Any], ...], Platform] = {}


class SageResource(ConfigurableResource):
    """Settings overrides for one deployment; unset fields come from the environment."""

    data_dir: str | None = None
    database_url: str | None = None
    corpus_dir: str | None = None
    eval_set: str | None = None
    embedding_model: str | None = None
    embedding_batch_size: int | None = None
    chunk_size: int | None = None
    chunk_overlap: int | None = None

    _platform: Platform | None = PrivateAttr(default=None)

    def overrides(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value is not None}

    @property
    def platform(self) -> Platform:
        """One ``Platform`` per process and settings: the embedding model loads once."""
        if self._platform is None:
            settings = Settings(**self.overrides())
            key = tuple(sorted(settings.model_dump().items()))  # SecretStr hashes by its value
            self._platform = _PLATFORMS.setdefault(key, Platform(settings))
        return self._platform
