"""Dagster resources. The one resource, ``sage``, hands assets a configured ``Platform``.

Each field overrides the matching ``SAGE_*`` setting when given (run config or code), so the
precedence stays: explicit value, then environment, then default. The fields are declared by
``Settings``: their descriptions come from there, and ``tests/test_settings_list.py`` fails if a
field here is not a setting.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from sage_platform.config import Settings
from sage_platform.platform import Platform

_PLATFORMS: dict[tuple[tuple[str, Any], ...], Platform] = {}


def _setting(name: str) -> Any:
    """An unset override of the setting ``name``, described as ``Settings`` describes it."""
    return Field(None, description=Settings.model_fields[name].description)


class SageResource(ConfigurableResource["SageResource"]):
    """Settings overrides for one deployment; unset fields come from the environment."""

    data_dir: str | None = _setting("data_dir")
    database_url: str | None = _setting("database_url")
    corpus_dir: str | None = _setting("corpus_dir")
    eval_set: str | None = _setting("eval_set")
    embedding_model: str | None = _setting("embedding_model")
    embedding_batch_size: int | None = _setting("embedding_batch_size")
    chunk_size: int | None = _setting("chunk_size")
    chunk_overlap: int | None = _setting("chunk_overlap")

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
