"""A platform whose index holds 30 PubMedQA abstracts, built once for the dataflow tests, and the
SAGE_* environment that points library operators at it (as a user's shell would)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.platform import Platform
from tests.conftest import indexed_platform, pubmedqa_items

DOCS = 30


@pytest.fixture(scope="module")
def indexed(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path_factory.mktemp("dataflow"), DOCS)
    yield platform
    platform.db.close()


@pytest.fixture
def platform_env(indexed: Platform, monkeypatch: pytest.MonkeyPatch) -> Platform:
    settings = indexed.settings
    monkeypatch.setenv("SAGE_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("SAGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SAGE_CORPUS_DIR", str(settings.corpus_dir))
    return indexed


def questions(count: int = 10) -> list[tuple[str, dict]]:
    """(pmid, item) of the first ``count`` indexed abstracts."""
    return pubmedqa_items(count)


def write_questions(path: Path, count: int = 10) -> list[str]:
    asked = [item["QUESTION"] for _, item in questions(count)]
    path.write_text("\n\n".join(asked) + "\n")  # blank lines between: FileSource skips them
    return asked
