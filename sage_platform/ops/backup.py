"""Verified backups: ``pg_dump -Fc`` of the platform database, restored into a scratch database and
compared table by table (row count and a checksum of primary keys) before the backup counts.

The manifest is taken inside the very snapshot pg_dump reads (``--snapshot``), so writes that land
during the dump cannot make a good backup look bad. A backup is ``sage-<UTC time>.dump`` with its
manifest ``sage-<UTC time>.json`` beside it.

Usage::

    result = backup_now(settings)            # dump, restore into scratch, verify, keep or fail
    restore(Path(".sage/backups/sage-20261123T020000Z.dump"), "postgresql://…/target", force=False)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.db.urls import database_name, libpq_url, with_database
from sage_platform.ops.pgtools import pg_tool

STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(RuntimeError):
    pass


@dataclass
class TableCheck:
    table: str
    rows: int
    key_checksum: str | None  # None for a table without a primary key: its count alone is compared


@dataclass
class BackupResult:
    path: Path
    size_bytes: int
    dump_seconds: float
    verify_seconds: float
    tables: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return all(t["match"] for t in self.tables)


def backup_dir(settings: Settings) -> Path:
    return (settings.backup_dir or settings.data_dir / "backups").resolve()


def manifest(conn: psycopg.Connection) -> list[TableCheck]:
    """Row count and primary-key checksum of every table in ``public``, in the connection's snapshot."""
    tables = conn.execute(
        """SELECT c.relname,
                  array_remove(array_agg(a.attname ORDER BY array_position(i.indkey::int2[], a.attnum)), NULL)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
           GROUP BY c.relname ORDER BY c.relname"""
    ).fetchall()
    out = []
    for table, keys in tables:
        if keys:
            key = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
            query = sql.SQL("SELECT count(*), coalesce(md5(string_agg(md5({key}), '' ORDER BY {key})), '') FROM {t}")
            count, checksum = conn.execute(query.format(key=key, t=sql.Identifier(table))).fetchone()  # type: ignore[misc]
            out.append(TableCheck(table, int(count), checksum))
        else:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            out.append(TableCheck(table, int(row[0]) if row else 0, None))
    return out


def compare(expected: list[dict[str, Any]], actual: list[TableCheck]) -> list[dict[str, Any]]:
    found = {t.table: t for t in actual}
    out = []
    for table in expected:
        got = found.get(table["table"])
        match = got is not None and got.rows == table["rows"] and got.key_checksum == table["key_checksum"]
        out.append({"table": table["table"], "rows": table["rows"], "restored_rows": got.rows if got else None,
                    "key_checksum": table["key_checksum"], "match": match})  # fmt: skip
    return out


RESTORE_JOBS = 2  # pg_restore rebuilds indexes (HNSW, GIN) in parallel
# Index rebuilds during a restore get the memory an HNSW build needs instead of the 64 MB default.
RESTORE_ENV = {"PGOPTIONS": "-c maintenance_work_mem=1GB"}


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def backup_now(settings: Settings, db: Database | None = None, *, now: datetime | None = None) -> BackupResult:
    db = db or Database.from_settings(settings)
    url = libpq_url(db.url)
    folder = backup_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime(STAMP)
    path = folder / f"sage-{stamp}.dump"
    partial = path.with_suffix(".dump.partial")
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        checks = manifest(conn)
        _run([str(pg_tool("pg_dump", url)), "-Fc", f"--compress={settings.backup_compression}",
              f"--snapshot={snapshot}", "-f", str(partial), "-d", url])  # fmt: skip
        conn.rollback()
    dump_seconds = time.perf_counter() - began
    expected = [t.__dict__ for t in checks]
    verify_began = time.perf_counter()
    tables = verify_dump(partial, url, expected)
    result = BackupResult(path, partial.stat().st_size, dump_seconds, time.perf_counter() - verify_began, tables)
    if not result.verified:
        bad = [t["table"] for t in tables if not t["match"]]
        partial.unlink()
        raise BackupError(f"the backup did not verify; tables that differ after restore: {', '.join(bad)}")
    partial.rename(path)
    path.with_suffix(".json").write_text(json.dumps({
        "database": database_name(url), "created_at": stamp, "size_bytes": result.size_bytes,
        "dump_seconds": round(dump_seconds, 3), "verify_seconds": round(result.verify_seconds, 3), "tables": expected,
    }, indent=2))  # fmt: skip
    return result


def verify_dump(dump: Path, url: str, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Restore into a scratch database on the same server, compare, drop the scratch database."""
    scratch = f"sage_verify_{uuid.uuid4().hex[:10]}"
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        target = with_database(url, scratch)
        _run([str(pg_tool("pg_restore", url)), "--no-owner", "--exit-on-error", f"--jobs={RESTORE_JOBS}",
              "-d", target, str(dump)], RESTORE_ENV)  # fmt: skip
        with psycopg.connect(target) as conn:
            return compare(expected, manifest(conn))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def list_backups(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for path in sorted(backup_dir(settings).glob("sage-*.dump"), reverse=True):
        meta = path.with_suffix(".json")
        info = json.loads(meta.read_text()) if meta.exists() else {}
        out.append({"path": str(path), "created_at": _stamp_of(path).isoformat(), "size_bytes": path.stat().st_size,
                    "verified": bool(info), "tables": len(info.get("tables", []))})  # fmt: skip
    return out


def _stamp_of(path: Path) -> datetime:
    return datetime.strptime(path.stem.removeprefix("sage-"), STAMP).replace(tzinfo=UTC)


def retention_keep(stamps: list[datetime], daily: int, weekly: int) -> set[datetime]:
    """The newest backup of each of the last ``daily`` days and of each of the last ``weekly`` ISO weeks."""
    keep: set[datetime] = set()
    days: dict[Any, datetime] = {}
    weeks: dict[Any, datetime] = {}
    for stamp in sorted(stamps, reverse=True):
        days.setdefault(stamp.date(), stamp)
        weeks.setdefault(stamp.isocalendar()[:2], stamp)
    keep.update(list(days.values())[:daily])
    keep.update(list(weeks.values())[:weekly])
    return keep


def apply_retention(settings: Settings) -> list[Path]:
    """Delete the backups retention does not keep; returns what was deleted."""
    paths = {_stamp_of(p): p for p in backup_dir(settings).glob("sage-*.dump")}
    keep = retention_keep(list(paths), settings.backup_keep_daily, settings.backup_keep_weekly)
    deleted = []
    for stamp, path in paths.items():
        if stamp not in keep:
            path.unlink()
            path.with_suffix(".json").unlink(missing_ok=True)
            deleted.append(path)
    return sorted(deleted)


def restore(dump: Path, target_url: str, *, force: bool = False) -> list[dict[str, Any]]:
    """Restore a backup into ``target_url``; refuses a database that holds tables unless ``force``."""
    if not dump.exists():
        raise FileNotFoundError(f"no backup at {dump}")
    url = libpq_url(target_url)
    with psycopg.connect(url) as conn:
        tables = [t.table for t in manifest(conn)]
    if tables and not force:
        raise BackupError(
            f"the target database is not empty ({len(tables)} tables, e.g. {', '.join(tables[:3])}); "
            "restore into an empty database, or pass --force to replace its contents"
        )
    command = [str(pg_tool("pg_restore", url)), "--no-owner", "--exit-on-error", f"--jobs={RESTORE_JOBS}", "-d", url,
               str(dump)]  # fmt: skip
    if force:
        command[1:1] = ["--clean", "--if-exists"]
    _run(command, RESTORE_ENV)
    meta = dump.with_suffix(".json")
    if not meta.exists():
        return []
    with psycopg.connect(url) as conn:
        return compare(json.loads(meta.read_text())["tables"], manifest(conn))
