"""Backups: dump → restore into scratch → verify, on a database holding real ingested data."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sage_platform.config import Settings
from sage_platform.ops.backup import (
    BackupError,
    apply_retention,
    backup_now,
    compare,
    list_backups,
    manifest,
    retention_keep,
    verify_dump,
)
from sage_platform.ops.restore import restore
from sage_platform.ops.storage import S3Storage, backup_storage
from tests.conftest import create_database


def test_backup_restores_and_verifies_table_by_table(platform, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    assert result.verified and Path(result.location).exists() and result.size_bytes > 10_000
    tables = {t["table"]: t for t in result.tables}
    for name in ("documents", "chunks", "embeddings", "chunk_index_v1"):
        assert tables[name]["rows"] > 0 and tables[name]["rows"] == tables[name]["restored_rows"]
    assert [b["location"] for b in list_backups(platform.settings)] == [result.location]
    assert not list(Path(result.location).parent.glob("*.partial"))

    target = create_database(pg_server)
    checks = restore(platform.settings, result.location, target)
    assert checks and all(c["match"] for c in checks)
    with psycopg.connect(platform.db.url) as source, psycopg.connect(target) as copy:
        assert [(t.table, t.rows, t.checksum) for t in manifest(source)] == [
            (t.table, t.rows, t.checksum) for t in manifest(copy)]  # fmt: skip
        assert copy.execute("SELECT count(*) FROM chunk_index").fetchone()[0] > 0  # the view came back too


# One value changed in one row, its key kept: text, or one component of one vector by one millionth.
CHANGES = {
    "chunks": "UPDATE chunks SET text = text || '.' WHERE chunk_id = (SELECT min(chunk_id) FROM chunks)",
    "embeddings": """UPDATE embeddings SET embedding = (
                         SELECT (array_agg(CASE WHEN i = 1 THEN x + 1e-6 ELSE x END ORDER BY i))::vector
                         FROM unnest(embedding::real[]) WITH ORDINALITY u(x, i))
                     WHERE text_hash = (SELECT min(text_hash) FROM embeddings)""",
}


@pytest.mark.parametrize("table", sorted(CHANGES))
def test_verification_catches_a_changed_value_that_keeps_its_key(platform, pg_server: str, table: str) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(platform.db.url) as source:
        expected = [t.__dict__ for t in manifest(source)]
    copy_url = create_database(pg_server)
    result = backup_now(platform.settings, platform.db)
    restore(platform.settings, result.location, copy_url)
    with psycopg.connect(copy_url) as copy:
        assert all(c["match"] for c in compare(expected, manifest(copy)))
        change = CHANGES[table]
        copy.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # damage, not a write: nothing notes it
        assert copy.execute(change).rowcount == 1
        checks = {c["table"]: c for c in compare(expected, manifest(copy))}
    assert [name for name, c in checks.items() if not c["match"]] == [table]
    assert checks[table]["rows"] == checks[table]["restored_rows"]  # same keys, same count: only content differs


def test_a_manifest_from_before_whole_row_checksums_is_compared_by_row_count(platform) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(platform.db.url) as conn:
        current = manifest(conn)
    legacy = [{"table": t.table, "rows": t.rows, "key_checksum": "from-an-older-release"} for t in current]
    assert all(c["match"] for c in compare(legacy, current))
    legacy[0]["rows"] += 1
    assert [c["table"] for c in compare(legacy, current) if not c["match"]] == [current[0].table]


def test_restore_refuses_a_non_empty_target_unless_forced(platform) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    with pytest.raises(BackupError, match=r"not empty \(\d+ tables, e.g. .*--force"):
        restore(platform.settings, result.location, platform.db.url)
    with psycopg.connect(platform.db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM chunks WHERE position > 0")  # damage, then restore over it
    checks = restore(platform.settings, result.location, platform.db.url, force=True)
    assert all(c["match"] for c in checks)


def test_restore_refuses_a_dump_changed_since_it_verified(platform, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    dump = Path(result.location)
    body = bytearray(dump.read_bytes())
    body[len(body) // 2] ^= 0xFF
    dump.write_bytes(bytes(body))
    with pytest.raises(BackupError, match="not the dump that verified: its sha256 differs"):
        restore(platform.settings, dump.name, create_database(pg_server))


def test_a_damaged_dump_does_not_verify(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(Path(result.location).read_bytes()[: result.size_bytes // 2])
    with pytest.raises(BackupError, match="pg_restore failed"):
        verify_dump(damaged, platform.db.url, [])


def test_retention_keeps_the_newest_of_n_days_and_m_weeks(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    stamps = [now - timedelta(hours=12 * i) for i in range(120)]  # two a day for 60 days
    keep = retention_keep(stamps, daily=7, weekly=4)
    days = sorted({s.date() for s in keep}, reverse=True)
    assert len([s for s in keep if s > now - timedelta(days=7)]) == 7  # one per day, the newest
    assert all(max(x for x in stamps if x.date() == d) in keep for d in days)
    assert 7 <= len(keep) <= 11 and min(keep) > now - timedelta(days=29)


def test_apply_retention_deletes_the_rest_with_their_manifests(tmp_path: Path) -> None:
    from sage_platform.config import Settings

    settings = Settings(data_dir=tmp_path, backup_keep_daily=2, backup_keep_weekly=1)
    folder = tmp_path / "backups"
    folder.mkdir()
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    for days in range(5):
        stamp = (now - timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ")
        (folder / f"sage-{stamp}.dump").write_bytes(b"x")
        (folder / f"sage-{stamp}.json").write_text("{}")
    deleted = apply_retention(settings)
    assert len(deleted) == 3
    assert sorted(p.name for p in folder.iterdir()) == [
        "sage-20261122T020000Z.dump", "sage-20261122T020000Z.json",
        "sage-20261123T020000Z.dump", "sage-20261123T020000Z.json"]  # fmt: skip


def test_backup_and_restore_commands(platform, pg_server: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.cli import main

    monkeypatch.setenv("SAGE_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("SAGE_DATA_DIR", str(platform.settings.data_dir))
    assert main(["backup", "now"]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["backup", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1 and listed[0]["verified"]
    dump = listed[0]["name"]  # by name, as the list shows it
    assert main(["restore", dump, "--target-url", platform.settings.database_url]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main(["restore", dump, "--target-url", create_database(pg_server)]) == 0
    assert "tables match the backup's manifest" in capsys.readouterr().out


def test_s3_settings_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SAGE_S3_ENDPOINT_URL is set but SAGE_S3_BUCKET is not"):
        backup_storage(Settings(data_dir=tmp_path, s3_endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="set both SAGE_S3_ACCESS_KEY_ID and SAGE_S3_SECRET_ACCESS_KEY"):
        backup_storage(Settings(data_dir=tmp_path, s3_bucket="b", s3_access_key_id="k"))
    assert isinstance(backup_storage(Settings(data_dir=tmp_path, s3_bucket="sage", s3_prefix="x")), S3Storage)


def test_an_unreachable_s3_endpoint_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(data_dir=tmp_path, s3_bucket="sage", s3_endpoint_url=f"http://127.0.0.1:{port}",
                        s3_region="us-east-1", s3_access_key_id="k", s3_secret_access_key="s")  # fmt: skip
    with pytest.raises(BackupError, match=rf"S3 listing at s3://sage/sage/backups/ failed: .*127.0.0.1:{port}"):
        list_backups(settings)
