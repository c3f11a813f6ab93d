"""Workspace files: versions owned by a user and a session, their bytes in a ``FileStore``.

A name written again is a new version, never an overwrite. Every call names the owner, and a file of
another user or session is "not found". Bytes are stored before the row that points to them, so a
listed file can always be read; a crash between the two leaves only an unlisted blob.

Usage::

    files = WorkspaceFiles(db, file_store(settings))
    record = files.add("ada", "s1", "notes.md", b"# Notes")
    files.read("ada", "s1", record.file_id)      # (record, bytes)
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sage_platform.db import Database
from sage_platform.workspace.sniff import sniff
from sage_platform.workspace.store import FileStore

MAX_NAME = 255


@dataclass(frozen=True)
class FileRecord:
    file_id: str
    session_id: str
    name: str
    version: int
    content_type: str
    size: int
    sha256: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


_COLUMNS = "file_id, session_id, name, version, content_type, size, sha256, created_at"


def clean_name(name: str) -> str:
    """A display name: the last part of what the client sent, without control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()[:MAX_NAME]
    if cleaned in ("", ".", ".."):
        raise ValueError(f"not a file name: {name!r}")
    return cleaned


class WorkspaceFiles:
    def __init__(self, db: Database, store: FileStore) -> None:
        self.db = db
        self.store = store

    def add(self, user_id: str, session_id: str, name: str, data: bytes) -> FileRecord:
        name = clean_name(name)
        file_id = uuid.uuid4().hex
        self.store.put(file_id, data)
        with self.db.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{user_id}/{session_id}/{name}",))
            row = conn.execute(
                f"""INSERT INTO workspace_files (file_id, user_id, session_id, name, version, content_type, size,
                                                 sha256, storage_key)
                    SELECT %s, %s, %s, %s, coalesce(max(version), 0) + 1, %s, %s, %s, %s FROM workspace_files
                    WHERE user_id = %s AND session_id = %s AND name = %s
                    RETURNING {_COLUMNS}""",  # noqa: S608
                (file_id, user_id, session_id, name, sniff(data, name), len(data), hashlib.sha256(data).hexdigest(),
                 file_id, user_id, session_id, name),
            ).fetchone()  # fmt: skip
        assert row is not None
        return FileRecord(*row)

    def listing(self, user_id: str, session_id: str | None = None) -> list[FileRecord]:
        query = f"SELECT {_COLUMNS} FROM workspace_files WHERE user_id = %s AND deleted_at IS NULL"  # noqa: S608
        params: tuple[Any, ...] = (user_id,)
        if session_id is not None:
            query += " AND session_id = %s"
            params += (session_id,)
        with self.db.pool.connection() as conn:
            rows = conn.execute(query + " ORDER BY created_at DESC, name, version DESC", params).fetchall()
        return [FileRecord(*row) for row in rows]

    def find(self, user_id: str, file_id: str, session_id: str | None = None) -> FileRecord:
        with self.db.pool.connection() as conn:
            row = conn.execute(
                f"""SELECT {_COLUMNS} FROM workspace_files
                    WHERE file_id = %s AND user_id = %s AND deleted_at IS NULL
                      AND (%s::text IS NULL OR session_id = %s)""",  # noqa: S608
                (file_id, user_id, session_id, session_id),
            ).fetchone()
        if row is None:
            raise FileNotFoundError(f"no file {file_id}")
        return FileRecord(*row)

    def latest(self, user_id: str, session_id: str, name: str) -> FileRecord:
        with self.db.pool.connection() as conn:
            row = conn.execute(
                f"""SELECT {_COLUMNS} FROM workspace_files
                    WHERE user_id = %s AND session_id = %s AND name = %s AND deleted_at IS NULL
                    ORDER BY version DESC LIMIT 1""",  # noqa: S608
                (user_id, session_id, name),
            ).fetchone()
        if row is None:
            raise FileNotFoundError(f"no file named {name!r} in this session")
        return FileRecord(*row)

    def read(self, user_id: str, file_id: str, session_id: str | None = None) -> tuple[FileRecord, bytes]:
        record = self.find(user_id, file_id, session_id)
        return record, self.store.get(record.file_id)

    def delete(self, user_id: str, file_id: str) -> FileRecord:
        record = self.find(user_id, file_id)
        with self.db.pool.connection() as conn:
            conn.execute("UPDATE workspace_files SET deleted_at = now() WHERE file_id = %s", (file_id,))
        self.store.delete(file_id)
        return record

    def expire(self, older_than_days: int) -> int:
        """Delete files (rows and bytes) created more than ``older_than_days`` ago; how many."""
        with self.db.pool.connection() as conn:
            keys = [r[0] for r in conn.execute(
                """UPDATE workspace_files SET deleted_at = now()
                   WHERE deleted_at IS NULL AND created_at < now() - make_interval(days => %s) RETURNING storage_key""",
                (older_than_days,),
            ).fetchall()]  # fmt: skip
        for key in keys:
            self.store.delete(key)
        return len(keys)
