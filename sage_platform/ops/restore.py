"""Restoring a verified backup: into a new database first, checked, then swapped in by name.

The dump is restored into ``<target>_restoring_<id>`` on the target's server and compared table by table
with the backup's manifest. Only when every table matches is it swapped in: the target is renamed
aside and the new database takes its name, both in one transaction, and the old one is dropped. On any
failure the new database is dropped and the target is exactly as it was. A target that holds tables is
replaced only with ``force``; a dump with no manifest (so nothing to verify against) only with
``unverified``.

Usage::

    restore(settings, "sage-20261123T020000Z.dump", "postgresql://…/target", force=False)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from sage_platform.config import Settings
from sage_platform.db.urls import database_name, libpq_url, with_database
from sage_platform.hashing import file_sha256
from sage_platform.ops.backup import RESTORE_ENV, RESTORE_JOBS
from sage_platform.ops.pgtools import run_pg_tool
from sage_platform.ops.storage import BackupError, backup_storage
from sage_platform.ops.verify import compare, manifest

__all__ = ["restore"]


def restore(
    settings: Settings, backup: str | Path, target_url: str, *, force: bool = False, unverified: bool = False
) -> list[dict[str, Any]]:
    """Restore a backup (a dump file, or a name in the backup storage) into ``target_url``; returns the
    table-by-table comparison with the backup's manifest (empty for an ``unverified`` restore)."""
    url = libpq_url(target_url)
    with psycopg.connect(url) as conn:
        tables = [t.table for t in manifest(conn)]
    if tables and not force:
        raise BackupError(
            f"the target database is not empty ({len(tables)} tables, e.g. {', '.join(tables[:3])}); "
            "restore into an empty database, or pass --force to replace its contents"
        )
    with _open_backup(settings, backup) as (dump, info):
        if not info and not unverified:
            raise BackupError(
                f"{dump.name} has no manifest, so the restore could not be verified; "
                "pass --unverified to restore it anyway"
            )
        if info and info.get("sha256") and file_sha256(dump) != info["sha256"]:
            raise BackupError(f"{dump.name} is not the dump that verified: its sha256 differs from the manifest's")
        return _restore_and_swap(url, dump, info)


def _restore_and_swap(url: str, dump: Path, info: dict[str, Any] | None) -> list[dict[str, Any]]:
    target = database_name(url)
    fresh = f"{target}_restoring_{uuid.uuid4().hex[:8]}"
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
    swapped = False
    try:
        run_pg_tool("pg_restore", with_database(url, fresh),
                    ["--no-owner", "--exit-on-error", f"--jobs={RESTORE_JOBS}"], (str(dump),), RESTORE_ENV)  # fmt: skip
        checks: list[dict[str, Any]] = []
        if info:
            with psycopg.connect(with_database(url, fresh)) as conn:
                checks = compare(info["tables"], manifest(conn))
            bad = [t["table"] for t in checks if not t["match"]]
            if bad:
                raise BackupError(
                    f"the restored copy does not match the manifest ({', '.join(bad)}); {target} is unchanged"
                )
        _swap(admin, target, fresh)
        swapped = True
        return checks
    finally:
        if not swapped:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))


def _swap(admin: str, target: str, fresh: str) -> None:
    """Rename the target aside and the restored copy into its place, in one transaction; drop the old."""
    aside = f"{target}_replaced_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin) as conn:
        for name in (target, fresh):  # renaming needs the databases free of sessions
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(aside)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(target)))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(aside)))


@contextmanager
def _open_backup(settings: Settings, backup: str | Path) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """A dump file given by path (its manifest beside it), or a stored backup by name or location."""
    path = Path(backup)
    if path.is_file():
        meta = path.with_suffix(".json")
        yield path, json.loads(meta.read_text()) if meta.exists() else None
        return
    storage = backup_storage(settings)
    name = str(backup).rsplit("/", 1)[-1]
    if not name.startswith("sage-") or not name.endswith(".dump"):
        raise FileNotFoundError(f"no backup at {backup}: give a dump file or a name from `sage backup list`")
    with storage.local_copy(name) as dump:
        yield dump, storage.manifest(name)
