"""The parser worker process starts on the readers alone, on the first file to parse; a process keeps one."""

from __future__ import annotations

import os
import signal

import pytest

import sage_platform.ingest
from sage_platform.ingest.isolation import ParserLimits, kept_parser
from tests._imports import heavy_modules_loaded


def test_the_parser_worker_imports_neither_the_database_nor_the_settings() -> None:
    heavy = ("sqlalchemy", "psycopg", "psycopg2", "pydantic", "numpy", "sage_platform.config", "sage_platform.db")
    assert heavy_modules_loaded("import sage_platform.ingest.isolation", heavy) == []


def test_the_corpus_api_still_loads_from_the_package() -> None:
    from sage_platform.ingest.corpus import ingest_corpus

    assert sage_platform.ingest.ingest_corpus is ingest_corpus
    with pytest.raises(AttributeError, match="has no attribute 'ingest_everything'"):
        _ = sage_platform.ingest.ingest_everything


# Limits no other test uses: each test below has a kept worker of its own.
def test_a_process_keeps_its_parser_worker_for_the_next_run() -> None:
    limits = ParserLimits(timeout_s=29.0)
    with kept_parser(limits) as parser:
        assert parser.pid is None  # started on the first file, not before
        assert parser.parse("a.md", b"# A\n\nfirst").documents
        first = parser.pid
    with kept_parser(limits) as parser:
        assert parser.parse("b.md", b"# B\n\nsecond").documents[0].text.endswith("second")
        assert parser.pid == first  # the same worker: no Python and readers to start again


def test_a_worker_killed_between_runs_is_replaced_and_one_from_a_run_that_raised_is_closed() -> None:
    limits = ParserLimits(timeout_s=28.0)
    with kept_parser(limits) as parser:
        parser.parse("a.md", b"# A\n\nfirst")
        first = parser.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    os.waitpid(first, 0)  # dead and reaped: the kill has landed
    with pytest.raises(ValueError, match="stop"), kept_parser(limits) as parser:
        assert parser.parse("b.md", b"# B\n\nsecond").documents  # not rejected: a new worker parses it
        second = parser.pid
        assert second not in (None, first)
        raise ValueError("stop")
    with kept_parser(limits) as parser:
        assert parser.pid is None  # the worker of the run that raised was not kept
