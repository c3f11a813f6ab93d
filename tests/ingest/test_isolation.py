"""The parser worker process starts on the readers alone: it is started once per run that parses a file."""

from __future__ import annotations

import pytest

import sage_platform.ingest
from tests._imports import heavy_modules_loaded


def test_the_parser_worker_imports_neither_the_database_nor_the_settings() -> None:
    heavy = ("sqlalchemy", "psycopg", "psycopg2", "pydantic", "numpy", "sage_platform.config", "sage_platform.db")
    assert heavy_modules_loaded("import sage_platform.ingest.isolation", heavy) == []


def test_the_corpus_api_still_loads_from_the_package() -> None:
    from sage_platform.ingest.corpus import ingest_corpus

    assert sage_platform.ingest.ingest_corpus is ingest_corpus
    with pytest.raises(AttributeError, match="has no attribute 'ingest_everything'"):
        _ = sage_platform.ingest.ingest_everything
