"""``materialize_graph`` in this process: the run's Dagster storage keeps its connection open."""

from __future__ import annotations

import psycopg

from sage_platform.config import Settings
from sage_platform.runtime import materialize_graph
from tests.conftest import write_pubmedqa


def _sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def test_an_in_process_run_does_not_connect_per_query(settings: Settings) -> None:
    # dagster-postgres opens and closes a connection for every query unless told to keep one: a one-step
    # run then opens 43 (each a new server process). Kept open, what is left is the set-up: the platform's
    # pool and the instance's table checks, about a dozen.
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 3)
    assert settings.database_url
    settings = settings.model_copy(update={"dagster_database_url": settings.database_url})
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])  # the instance's tables
    before = _sessions(settings.database_url)
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    opened = _sessions(settings.database_url) - before - 1  # less the count's own connection
    assert 0 < opened <= 20, f"{opened} connections for a one-step run"
