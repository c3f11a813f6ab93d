"""``Database.connect()`` keeps the connections a process finished with, reset before their next use."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator

import psycopg
import pytest

from sage_platform.db import Database


@pytest.fixture
def database(migrated_database_url: str) -> Iterator[Database]:
    database = Database(migrated_database_url)
    yield database
    database.close()


def _backend(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_the_next_block_gets_the_same_session_with_nothing_left_of_the_last(database: Database) -> None:
    with database.connect() as conn:
        first = _backend(conn)
        conn.execute("SET work_mem = '77MB'")
        conn.execute("CREATE TEMP TABLE scratch (x int)")
        conn.execute("SELECT pg_advisory_lock(4242)")
    with psycopg.connect(database.url, autocommit=True) as other:  # an idle kept connection holds no lock
        assert other.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)
    with database.connect() as conn:
        assert _backend(conn) == first  # no new server process, no type look-ups
        assert conn.execute("SHOW work_mem").fetchone() != ("77MB",)
        assert conn.execute("SELECT to_regclass('pg_temp.scratch')").fetchone() == (None,)


def test_a_block_that_raises_rolls_back_and_its_connection_is_not_kept(database: Database) -> None:
    with database.connect(autocommit=True) as conn:
        first = _backend(conn)
    with pytest.raises(ValueError, match="stop"), database.connect() as conn:
        assert not conn.autocommit  # the mode asked for, not the last block's
        assert _backend(conn) == first
        conn.execute("INSERT INTO eval_runs (run_id, settings, scores) VALUES ('r1', '{}', '{}')")
        raise ValueError("stop")
    with database.connect() as conn:
        assert _backend(conn) != first
        assert conn.execute("SELECT count(*) FROM eval_runs").fetchone() == (0,)


def test_a_kept_connection_the_server_ended_is_replaced(database: Database) -> None:
    with database.connect() as conn:
        first = _backend(conn)
    with psycopg.connect(database.url, autocommit=True) as admin:  # as a restore does to the old database
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,)).fetchone() == (True,)
    with database.connect() as conn:
        assert _backend(conn) != first
        assert conn.execute("SELECT '[1,2]'::vector").fetchone() is not None  # pgvector's types registered


def test_statements_psycopg_prepared_still_run_on_the_kept_connection(database: Database) -> None:
    query = "SELECT count(*) FROM documents WHERE doc_id = %s"
    for _ in range(3):  # psycopg prepares a statement on the server from its sixth run on a connection
        with database.connect() as conn:
            for n in range(4):
                assert conn.execute(query, (f"d{n}",)).fetchone() == (0,)


def test_the_kept_connections_of_a_database_nobody_closed_are_closed_when_it_goes(migrated_database_url: str) -> None:
    database = Database(migrated_database_url)
    with database.connect() as conn:
        kept = _backend(conn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del database, conn
        gc.collect()
    assert [str(w.message) for w in caught if "deleted while still open" in str(w.message)] == []  # closed, not dropped
    with psycopg.connect(migrated_database_url, autocommit=True) as other:
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        for _ in range(200):  # the server ends the backend just after the goodbye: wait on it, not on time
            if other.execute(gone, (kept,)).fetchone() == (0,):
                break
            other.execute("SELECT pg_sleep(0.01)")
        assert other.execute(gone, (kept,)).fetchone() == (0,)
