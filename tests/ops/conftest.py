"""Fixtures of the operations tests: a platform holding real ingested, embedded and indexed data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import indexed_platform


@pytest.fixture
def platform(pg_server: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Twenty PubMedQA abstracts through the whole pipeline, in a fresh database."""
    (tmp_path / "kb").mkdir()
    platform = indexed_platform(pg_server, tmp_path / "kb", 20)
    yield platform
    platform.db.close()
