"""Backups: no password in argv, private and synced files, no unverified or half restore, no leftovers."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from sage_platform.db import Database
from sage_platform.db.urls import with_database
from sage_platform.ops.backup import BackupError, backup_now, manifest
from sage_platform.ops.pgtools import candidates
from sage_platform.ops.restore import restore
from tests.conftest import create_database


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"postgres:{password}@{parts.netloc.rpartition('@')[2]}"))


def _tables(url: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(url) as conn:
        return [(t.table, t.rows, t.checksum) for t in manifest(conn)]


def _databases(server: str, pattern: str) -> list[str]:
    with psycopg.connect(with_database(server, "postgres")) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))]


def test_the_database_password_never_reaches_argv(platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Wrappers that record how pg_dump and pg_restore were started, then run the real ones.
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        real = next(c for c in candidates(tool) if "pginstall" in str(c))
        script = wrappers / tool
        script.write_text(f'#!/bin/sh\necho "$0 $*" >> {tmp_path}/argv.log\n'
                          f'echo "${{PGPASSWORD:-}}" >> {tmp_path}/env.log\nexec {real} "$@"\n')  # fmt: skip
        script.chmod(0o755)
    monkeypatch.setenv("SAGE_PG_BIN_DIR", str(wrappers))
    secret = "pw-7f3c9d-never-in-argv"
    db = Database(_with_password(platform.db.url, secret))  # trust auth here: any password connects
    result = backup_now(platform.settings, db)
    assert result.verified
    argv = (tmp_path / "argv.log").read_text()
    assert "pg_dump" in argv and "pg_restore" in argv
    assert secret not in argv
    assert secret in (tmp_path / "env.log").read_text()  # it went through PGPASSWORD instead


def test_backups_are_private_and_leftovers_of_a_killed_one_are_removed(platform, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    staging = platform.settings.data_dir / "backups"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "sage-20000101T000000Z.dump.partial").write_bytes(b"half a dump")
    with psycopg.connect(with_database(pg_server, "postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE sage_verify_killed0001")
    result = backup_now(platform.settings, platform.db)
    dump = Path(result.location)
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(dump.with_suffix(".json").stat().st_mode) == 0o600
    assert not list(staging.glob("*.partial"))
    assert _databases(pg_server, "sage_verify_%") == []


def test_a_dump_without_a_manifest_is_refused_unless_unverified(platform, pg_server: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    bare = tmp_path / "sage-copy.dump"
    shutil.copy(result.location, bare)  # no .json beside it
    target = create_database(pg_server)
    with pytest.raises(BackupError, match="no manifest.*--unverified"):
        restore(platform.settings, bare, target)
    assert _tables(target) == []
    assert restore(platform.settings, bare, target, unverified=True) == []
    assert _tables(target) == _tables(platform.db.url)


def test_a_forced_restore_that_fails_leaves_the_target_as_it_was(platform, pg_server: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = backup_now(platform.settings, platform.db)
    target = create_database(pg_server)
    with psycopg.connect(target) as conn:
        conn.execute("CREATE TABLE precious (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO precious VALUES (1, 'must survive a failed restore')")
    before = _tables(target)
    broken = tmp_path / "sage-broken.dump"
    shutil.copy(result.location, broken)
    info = json.loads(Path(result.location).with_suffix(".json").read_text())
    info["tables"][0]["rows"] += 1  # the restored copy will not match: the restore must not land
    broken.with_suffix(".json").write_text(json.dumps(info))
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore(platform.settings, broken, target, force=True)
    assert _tables(target) == before
    assert _databases(pg_server, "%_restoring_%") == [] and _databases(pg_server, "%_replaced_%") == []

    checks = restore(platform.settings, result.location, target, force=True)  # a good one swaps in whole
    assert checks and all(c["match"] for c in checks)
    assert "precious" not in {t for t, _, _ in _tables(target)}
    assert _tables(target) == _tables(platform.db.url)
    assert "PGPASSWORD" not in os.environ  # set for the tools' processes only, never in our own
