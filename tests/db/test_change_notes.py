"""Change notes as a reader sees them: its notes since its last read, or the whole table when its basis
changed, when it never read, and on the first read of each day."""

from datetime import UTC, datetime

import psycopg
import pytest

from sage_platform.db import change_notes
from sage_platform.db.change_notes import record_read, take_notes


class _Clock:
    day = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)

    @classmethod
    def now(cls, tz: object = None) -> datetime:
        return cls.day


def _read(url: str, basis: str, *, commit: bool = True) -> list[str] | None:
    with psycopg.connect(url) as conn:
        taken = take_notes(conn, "document_chunks", basis)
        if commit:
            record_read(conn, taken)
        else:
            conn.rollback()
    return taken.keys


def test_a_reader_gets_its_notes_until_its_basis_or_the_day_changes(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_notes, "datetime", _Clock)
    monkeypatch.setattr(_Clock, "day", datetime(2026, 12, 2, 23, 59, tzinfo=UTC))
    url = migrated_database_url

    def note(*keys: str) -> None:
        with psycopg.connect(url) as conn:
            for key in keys:
                conn.execute("INSERT INTO change_notes (reader, key) VALUES ('document_chunks', %s)", (key,))

    note("a")
    assert _read(url, "rules 1") is None  # never read: the whole table, and the note is taken
    assert _read(url, "rules 1") == []
    note("b", "a", "b")
    assert _read(url, "rules 1", commit=False) == ["a", "b"]  # a read that does not commit keeps them
    assert _read(url, "rules 1") == ["a", "b"]
    note("c")
    assert _read(url, "rules 2") is None  # new rules: the whole table
    monkeypatch.setattr(_Clock, "day", datetime(2026, 12, 3, 0, 1, tzinfo=UTC))
    assert _read(url, "rules 2") is None  # the first read of the day: the whole table
    note("d")
    assert _read(url, "rules 2") == ["d"]
