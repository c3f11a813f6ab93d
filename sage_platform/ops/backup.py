"""Verified backups: ``pg_dump -Fc`` of the platform database, restored into a scratch database and
compared table by table (row count and a checksum of every row's whole content) before the backup
counts.
It is then kept in the backup storage (``SAGE_BACKUP_DIR``, or an S3-compatible bucket when
``SAGE_S3_BUCKET`` is set; see ``storage``) with its manifest, which also records the dump's sha256 so a
restore uses exactly the bytes that verified.

The manifest is taken inside the very snapshot pg_dump reads (``--snapshot``), so writes that land
during the dump cannot make a good backup look bad. A backup is ``sage-<UTC time>.dump`` with its
manifest ``sage-<UTC time>.json`` beside it.

Usage::

    result = backup_now(settings)            # dump, restore into scratch, verify, store or fail
    apply_retention(settings)
"""

from __future__ import annotations

import os
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
from sage_platform.hashing import file_sha256
from sage_platform.ingest.safe_files import write_private_file
from sage_platform.ops.pgtools import run_pg_tool
from sage_platform.ops.storage import (
    STAMP,
    BackupError,
    BackupStorage,
    LocalStorage,
    backup_storage,
    staging_dir,
    stamp_of,
)
from sage_platform.ops.verify import compare, manifest

__all__ = ["BackupError", "BackupResult", "apply_retention", "backup_now", "compare", "list_backups",
           "manifest", "retention_keep", "verify_dump"]  # fmt: skip


@dataclass
class BackupResult:
    location: str  # a path, or s3://bucket/key
    size_bytes: int
    dump_seconds: float
    verify_seconds: float
    tables: list[dict[str, Any]] = field(default_factory=list)
    store_seconds: float = 0.0  # moving it into the folder, or uploading it to S3

    @property
    def verified(self) -> bool:
        return all(t["match"] for t in self.tables)


RESTORE_JOBS = 2  # pg_restore rebuilds indexes (HNSW, GIN) in parallel
# Index rebuilds during a restore get the memory an HNSW build needs instead of the 64 MB default.
RESTORE_ENV = {"PGOPTIONS": "-c maintenance_work_mem=1GB"}


VERIFY_PREFIX = "sage_verify_"
_BACKUP_LOCK = 0x5A6E_0B0B  # one backup at a time per server: leftovers of a killed one are then safe to drop


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def clean_leftovers(conn: psycopg.Connection, folder: Path) -> list[str]:
    """Scratch databases and ``.partial`` dumps a killed backup left (call holding the backup lock)."""
    names = [row[0] for row in conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (VERIFY_PREFIX + "%",)
    ).fetchall()]  # fmt: skip
    for name in names:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    partials = sorted(folder.glob("sage-*.dump.partial"))
    for partial in partials:
        partial.unlink(missing_ok=True)
    return names + [p.name for p in partials]


def backup_now(
    settings: Settings, db: Database | None = None, *, now: datetime | None = None, storage: BackupStorage | None = None
) -> BackupResult:
    db = db or Database.from_settings(settings)
    storage = storage or backup_storage(settings)
    url = libpq_url(db.url)
    folder = staging_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime(STAMP)
    name = f"sage-{stamp}.dump"
    partial = folder / f"{name}.partial"
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as lock:
        if not lock.execute("SELECT pg_try_advisory_lock(%s)", (_BACKUP_LOCK,)).fetchone()[0]:  # type: ignore[index]
            raise BackupError("another backup of this server is running; try again when it has finished")
        clean_leftovers(lock, folder)
        return _backup_locked(settings, url, storage, folder, name, partial, stamp)


def _backup_locked(
    settings: Settings, url: str, storage: BackupStorage, folder: Path, name: str, partial: Path, stamp: str
) -> BackupResult:
    began = time.perf_counter()
    write_private_file(partial, b"")  # mode 0600 before pg_dump writes it: it keeps the mode it finds
    with psycopg.connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        checks = manifest(conn)
        run_pg_tool("pg_dump", url, ["-Fc", f"--compress={settings.backup_compression}", f"--snapshot={snapshot}",
                                     "-f", str(partial)])  # fmt: skip
        conn.rollback()
    _fsync(partial)
    dump_seconds = time.perf_counter() - began
    expected = [t.__dict__ for t in checks]
    verify_began = time.perf_counter()
    try:
        tables = verify_dump(partial, url, expected)
        size = partial.stat().st_size
        verify_seconds = time.perf_counter() - verify_began
        bad = [t["table"] for t in tables if not t["match"]]
        if bad:
            raise BackupError(f"the backup did not verify; tables that differ after restore: {', '.join(bad)}")
        info = {
            "database": database_name(url), "created_at": stamp, "size_bytes": size, "sha256": file_sha256(partial),
            "dump_seconds": round(dump_seconds, 3), "verify_seconds": round(verify_seconds, 3), "tables": expected,
        }  # fmt: skip
        store_began = time.perf_counter()
        try:
            location = storage.save(partial, name, info)
        except BackupError as error:
            if isinstance(storage, LocalStorage):
                raise
            kept = LocalStorage(folder).save(partial, name, info)  # a verified backup is never thrown away
            raise BackupError(f"{error}; the verified backup is kept at {kept}") from error
    finally:
        partial.unlink(missing_ok=True)  # stored (moved or uploaded) or failed: nothing is left behind
    return BackupResult(location, size, dump_seconds, verify_seconds, tables, time.perf_counter() - store_began)


def verify_dump(dump: Path, url: str, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Restore into a scratch database on the same server, compare, drop the scratch database."""
    scratch = f"{VERIFY_PREFIX}{uuid.uuid4().hex[:10]}"
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        target = with_database(url, scratch)
        run_pg_tool("pg_restore", target, ["--no-owner", "--exit-on-error", f"--jobs={RESTORE_JOBS}"], (str(dump),),
                    RESTORE_ENV)  # fmt: skip
        with psycopg.connect(target) as conn:
            return compare(expected, manifest(conn))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


def list_backups(settings: Settings, storage: BackupStorage | None = None) -> list[dict[str, Any]]:
    storage = storage or backup_storage(settings)
    out = []
    for backup in storage.backups():
        info = storage.manifest(backup.name) or {}
        out.append({"name": backup.name, "location": backup.location, "created_at": backup.created_at.isoformat(),
                    "size_bytes": backup.size_bytes, "verified": bool(info), "tables": len(info.get("tables", []))})  # fmt: skip
    return out


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


def apply_retention(settings: Settings, storage: BackupStorage | None = None) -> list[str]:
    """Delete the backups retention does not keep, and manifests an interrupted save left; returns the names."""
    storage = storage or backup_storage(settings)
    names = {b.created_at: b.name for b in storage.backups()}
    keep = retention_keep(list(names), settings.backup_keep_daily, settings.backup_keep_weekly)
    deleted = [name for stamp, name in names.items() if stamp not in keep]
    newest = max(names, default=None)
    # A manifest without its dump is an interrupted save, unless it is newer than every dump (one in flight).
    deleted += [n for n in storage.orphan_manifests() if newest and stamp_of(n) < newest]
    for name in deleted:
        storage.delete(name.removesuffix(".json") + ".dump" if name.endswith(".json") else name)
    return sorted(deleted)
