"""The agent's workspace: files uploaded or written per user and session, stored locally or on S3.

Usage::

    from sage_platform.workspace import WorkspaceFiles, file_store
    files = WorkspaceFiles(platform.db, file_store(settings))
"""

from sage_platform.workspace.files import FileRecord, WorkspaceFiles, clean_name
from sage_platform.workspace.index import SessionIndex
from sage_platform.workspace.sniff import sniff
from sage_platform.workspace.store import FileStore, FileStoreError, LocalFileStore, S3FileStore, file_store

__all__ = [
    "FileRecord",
    "FileStore",
    "FileStoreError",
    "LocalFileStore",
    "S3FileStore",
    "SessionIndex",
    "WorkspaceFiles",
    "clean_name",
    "file_store",
    "sniff",
]
