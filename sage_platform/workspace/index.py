"""A session's files as a knowledge base: chunked with the platform's splitter, embedded with its model
the first time the session is searched after a file arrives, and searched exactly (a session holds few
files; no approximate index is needed). Files that cannot be read are marked with the reason, once.

Usage::

    index = SessionIndex(db, files, splitter, embedder)
    hits = index.search("ada", "s1", "what did the report say about revenue?", k=5)
"""

from __future__ import annotations

import numpy as np

from sage_platform.chunking import ChunkSplitter
from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.retrieval.types import Hit
from sage_platform.workspace.files import WorkspaceFiles
from sage_platform.workspace.text import extract_text, readable


class SessionIndex:
    def __init__(self, db: Database, files: WorkspaceFiles, splitter: ChunkSplitter, embedder: Embedder) -> None:
        self.db = db
        self.files = files
        self.splitter = splitter
        self.embedder = embedder

    def ensure(self, user_id: str, session_id: str) -> int:
        """Chunk and embed the session's files not indexed yet; how many were."""
        with self.db.pool.connection() as conn:
            waiting = [r[0] for r in conn.execute(
                """SELECT file_id FROM workspace_files WHERE user_id = %s AND session_id = %s
                   AND deleted_at IS NULL AND indexed_at IS NULL AND index_error IS NULL""",
                (user_id, session_id),
            ).fetchall()]  # fmt: skip
        for file_id in waiting:
            record, data = self.files.read(user_id, file_id, session_id)
            try:
                if not readable(record.content_type):
                    raise ValueError(f"{record.content_type} is not text")
                chunks = [c.text for c in self.splitter.split(extract_text(record, data)) if c.text.strip()]
            except Exception as error:  # a file that cannot be read is skipped with its reason, not retried
                with self.db.pool.connection() as conn:
                    conn.execute("UPDATE workspace_files SET index_error = %s WHERE file_id = %s",
                                 (f"{type(error).__name__}: {error}"[:500], file_id))  # fmt: skip
                continue
            vectors = self.embedder.embed(chunks) if chunks else np.zeros((0, 1), np.float32)
            with self.db.pool.connection() as conn, conn.transaction():
                conn.execute("DELETE FROM workspace_chunks WHERE file_id = %s", (file_id,))
                with conn.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO workspace_chunks (file_id, position, text, embedding) VALUES (%s, %s, %s, %s)",
                        [(file_id, i, text, np.asarray(vector, dtype=np.float32)) for i, (text, vector) in enumerate(zip(chunks, vectors, strict=True))],
                    )  # fmt: skip
                conn.execute("UPDATE workspace_files SET indexed_at = now() WHERE file_id = %s", (file_id,))
        return len(waiting)

    def search(self, user_id: str, session_id: str, query: str, k: int = 5) -> list[Hit]:
        self.ensure(user_id, session_id)
        vector = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                """SELECT c.file_id, c.position, c.text, 1 - (c.embedding <=> %s) AS score, f.name, f.version
                   FROM workspace_chunks c JOIN workspace_files f USING (file_id)
                   WHERE f.user_id = %s AND f.session_id = %s AND f.deleted_at IS NULL
                   ORDER BY c.embedding <=> %s LIMIT %s""",
                (vector, user_id, session_id, vector, k),
            ).fetchall()
        return [
            Hit(f"{file_id}:{position}", f"{name} (v{version})", float(score), text,
                {"file_id": file_id, "source": name, "title": name})
            for file_id, position, text, score, name, version in rows
        ]  # fmt: skip
