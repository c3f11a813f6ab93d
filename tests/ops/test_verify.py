"""Backup verification by itself, on the real database: a copy made with CREATE DATABASE … TEMPLATE
verifies; any changed value, a missing or extra row, or a missing table does not, and says which."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from sage_platform.db.urls import database_name, with_database
from sage_platform.ops.verify import compare, manifest


@pytest.fixture
def source_and_copy(pg_server: str, database_url: str) -> Iterator[tuple[str, str]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE keyed (id integer PRIMARY KEY, body text, v vector(3), at timestamptz)")
        conn.execute("CREATE TABLE loose (note text, n numeric)")  # no primary key
        conn.execute(
            "INSERT INTO keyed SELECT i, 'row ' || i, ARRAY[i, i / 3.0, 0.1]::vector,"
            " '2026-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 50) i"
        )
        conn.execute("INSERT INTO loose VALUES ('a', 1.5), ('a', 1.5), ('b', NULL)")
    name = database_name(database_url)
    copy = f"{name}_copy"
    with psycopg.connect(with_database(pg_server, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name)))
    yield database_url, with_database(pg_server, copy)


def _checks(source: str, copy: str, change: str | None = None) -> dict[str, bool]:
    with psycopg.connect(source) as conn:
        expected = [t.__dict__ for t in manifest(conn)]
    with psycopg.connect(copy, autocommit=True) as conn:
        if change:
            conn.execute(change)
        return {c["table"]: c["match"] for c in compare(expected, manifest(conn))}


def test_an_exact_copy_verifies_even_in_another_time_zone(source_and_copy: tuple[str, str]) -> None:
    source, copy = source_and_copy
    assert _checks(source, copy) == {"keyed": True, "loose": True}
    with psycopg.connect(copy, autocommit=True) as conn:  # the session's settings do not change the manifest
        conn.execute("SET TimeZone = 'Asia/Kolkata'")
        conn.execute("SET extra_float_digits = 0")
        with psycopg.connect(source) as original:
            assert [t.__dict__ for t in manifest(conn)] == [t.__dict__ for t in manifest(original)]


@pytest.mark.parametrize(
    ("change", "table"),
    [
        ("UPDATE keyed SET body = 'row 7 ' WHERE id = 7", "keyed"),
        ("UPDATE keyed SET v = '[7, 2.333334, 0.1]' WHERE id = 7", "keyed"),
        ("UPDATE keyed SET at = at + interval '1 microsecond' WHERE id = 7", "keyed"),
        ("DELETE FROM keyed WHERE id = 50", "keyed"),
        ("INSERT INTO loose VALUES ('a', 1.5)", "loose"),
        ("UPDATE loose SET n = 1.50 WHERE note = 'b'", "loose"),
        ("DELETE FROM loose WHERE note = 'b'; INSERT INTO loose VALUES ('c', NULL)", "loose"),
    ],
)
def test_a_changed_missing_or_extra_row_fails_only_its_table(
    source_and_copy: tuple[str, str], change: str, table: str
) -> None:
    source, copy = source_and_copy
    checks = _checks(source, copy, change)
    assert [name for name, match in checks.items() if not match] == [table]


def test_a_missing_table_fails_and_the_report_says_what_was_restored(source_and_copy: tuple[str, str]) -> None:
    source, copy = source_and_copy
    with psycopg.connect(source) as conn:
        expected = [t.__dict__ for t in manifest(conn)]
    with psycopg.connect(copy, autocommit=True) as conn:
        conn.execute("DROP TABLE loose")
        report = {c["table"]: c for c in compare(expected, manifest(conn))}
    assert report["loose"]["match"] is False and report["loose"]["restored_rows"] is None
    assert report["keyed"] == {"table": "keyed", "rows": 50, "restored_rows": 50,
                               "checksum": expected[0]["checksum"], "match": True}  # fmt: skip
    assert len(expected[0]["checksum"]) == 32 and expected[0]["rows"] == 50
