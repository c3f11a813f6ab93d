"""Long-term agent memory: facts the model chose to ``remember``, recalled by meaning.

``memory_type="user"`` recalls across all of a user's sessions; ``"session"`` only within one.
Saving the same text twice in the same scope stores it once.

Usage::

    memory = AgentMemory(db, embedder)
    memory.remember("alice", "s1", "Alice prefers answers in French.")
    memory.recall("alice", "s2", "language preference", memory_type="user")
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.hashing import text_hash

MAX_MEMORY_CHARS = 4000


class AgentMemory:
    def __init__(self, db: Database, embedder: Embedder) -> None:
        self.db = db
        self.embedder = embedder

    def remember(self, user_id: str, session_id: str, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise ValueError("nothing to remember: the text is empty")
        if len(text) > MAX_MEMORY_CHARS:
            raise ValueError(f"a memory holds at most {MAX_MEMORY_CHARS} characters, got {len(text)}")
        vector = self.embedder.embed([text])[0]
        with self.db.pool.connection() as conn:
            row = conn.execute(
                """INSERT INTO agent_memories (user_id, session_id, text, text_hash, model, dim, embedding)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (user_id, session_id, text_hash) DO UPDATE SET created_at = now()
                   RETURNING memory_id, (xmax = 0) AS inserted""",
                (user_id, session_id, text, text_hash(text), self.embedder.model_name, len(vector),
                 np.asarray(vector, dtype=np.float32)),
            ).fetchone()  # fmt: skip
        assert row is not None
        return {"memory_id": row[0], "stored": bool(row[1]), "text": text}

    def recall(
        self, user_id: str, session_id: str, query: str, *, k: int = 5, memory_type: Literal["session", "user"]
    ) -> list[dict[str, Any]]:
        if not query.strip():
            return []
        vector = np.asarray(self.embedder.embed([query])[0], dtype=np.float32)
        scope = "" if memory_type == "user" else "AND session_id = %(session_id)s"
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                f"""SELECT memory_id, text, session_id, 1 - (embedding <=> %(vector)s) AS score
                    FROM agent_memories
                    WHERE user_id = %(user_id)s AND model = %(model)s {scope}
                    ORDER BY embedding <=> %(vector)s, memory_id DESC LIMIT %(k)s""",  # noqa: S608 (fixed fragment)
                {"vector": vector, "user_id": user_id, "session_id": session_id,
                 "model": self.embedder.model_name, "k": k},
            ).fetchall()  # fmt: skip
        return [{"memory_id": m, "text": t, "session_id": s, "score": round(float(sc), 4)} for m, t, s, sc in rows]
