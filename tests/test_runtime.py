"""``materialize_graph`` in this process: the run's Dagster storage keeps its connection open, and one
instance serves the process's runs while its home and storage stay the same."""

from __future__ import annotations

import psycopg
import pytest
from dagster import DagsterInstance

from sage_platform.config import Settings
from sage_platform.kept_instance import kept_instance
from sage_platform.runtime import materialize_graph
from tests.conftest import write_pubmedqa


def _sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def test_an_in_process_run_does_not_connect_per_query(settings: Settings) -> None:
    # dagster-postgres opens and closes a connection for every query unless told to keep one: a one-step
    # run then opens 43 (each a new server process). Kept open, and the instance kept from the run before,
    # what is left is the platform's own set-up: four.
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 3)
    assert settings.database_url
    settings = settings.model_copy(update={"dagster_database_url": settings.database_url})
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])  # the instance's tables
    before = _sessions(settings.database_url)
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    opened = _sessions(settings.database_url) - before - 1  # less the count's own connection
    assert 0 < opened <= 6, f"{opened} connections for a one-step run"  # 13 with a new instance per run


def test_runs_in_one_process_share_an_instance_until_its_storage_changes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 3)
    settings = settings.model_copy(update={"dagster_database_url": settings.database_url})
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    instance = kept_instance()
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    assert kept_instance() is instance and instance.get_runs_count() == 2  # both runs recorded in it

    disposed: list[DagsterInstance] = []
    real_dispose = DagsterInstance.dispose
    monkeypatch.setattr(DagsterInstance, "dispose", lambda self: (disposed.append(self), real_dispose(self))[1])
    monkeypatch.setenv("SAGE_DAGSTER_COMPUTE_LOG_DIR", str(settings.data_dir / "other_compute_logs"))
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    assert kept_instance() is not instance and disposed == [instance]  # the old one's connections closed
    assert kept_instance().get_runs_count() == 3


def test_the_kept_instance_does_not_look_its_tables_over_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dagster's SQL storages inspect their tables' columns before each asset event and run.
    import sqlalchemy

    write_pubmedqa(settings.corpus_dir, settings.eval_set, 3)
    settings = settings.model_copy(update={"dagster_database_url": settings.database_url})
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    inspected: list[object] = []
    real_inspect = sqlalchemy.inspect
    monkeypatch.setattr(sqlalchemy, "inspect", lambda subject: inspected.append(subject) or real_inspect(subject))
    assert materialize_graph(settings, log_level="ERROR", assets=["eval_questions"])
    assert kept_instance().get_runs_count() == 2
    assert inspected == []
