"""The one memory store: coding-agent turns saved through the memory server, and the facts the
streaming agent chose to ``remember``, in one table with one search (PostgreSQL + pgvector).

A memory is a turn (``user_input`` and ``assistant_response``); a fact is a memory with the text in
``user_input``, an empty response and ``metadata.kind = "fact"``. Every memory and session belongs to a user: sessions are namespaced by their owner, and every read and
write names the user it acts for (``None`` reads all users: admins and the local CLI only).

A save is idempotent: the same ``idempotency_key`` in the session, or the same content in the session within
``dedup_seconds``, returns the memory already stored instead of a second one, even under concurrent
retries (a transaction-level advisory lock serialises the check and the insert). Search is hybrid:
HNSW nearest neighbours and full text, fused by Reciprocal Rank Fusion like the platform's hybrid
retriever, newest first among equal scores.

Usage::

    store = MemoryStore.for_settings(settings, db, embedder)      # or MemoryStore(db, model, dim)
    saved = store.save("How do I run tests?", "make test", user_id="alice", session_id="s1", vector=v)
    hits = store.search("running the test suite", vector, user_id="alice", limit=5)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.embeddings.base import Embedder
from sage_platform.hashing import text_hash
from sage_platform.retrieval.hybrid import RRF_K
from sage_platform.text_search import searchable_text, text_search_config, websearch_query

HALFVEC_ABOVE = 2000  # pgvector indexes full-precision vectors up to 2,000 dimensions, halfvec up to 4,000


class MemoryRejected(ValueError):
    """A memory that breaks a rule (too large, empty); the message says which."""


@dataclass
class SavedMemory:
    memory_id: str
    session_id: str
    user_id: str
    created: bool
    duplicate_of: str | None = None  # "idempotency_key" or "content" when nothing new was stored


@dataclass
class MemoryHit:
    memory_id: str
    session_id: str
    user_id: str
    user_input: str
    assistant_response: str
    metadata: dict[str, Any]
    created_at: datetime
    similarity: float
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass
class MemoryRules:
    dedup_seconds: float = 300.0
    max_chars: int = 32_000
    candidate_depth: int = 100


@dataclass
class MemoryStore:
    db: Database
    model: str
    dim: int
    rules: MemoryRules = field(default_factory=MemoryRules)

    @classmethod
    def for_settings(cls, settings: Settings, db: Database, embedder: Embedder) -> MemoryStore:
        """The store for this embedder, with the rules from settings and its HNSW index in place."""
        rules = MemoryRules(dedup_seconds=settings.memory_dedup_seconds, max_chars=settings.memory_max_chars)
        store = cls(db, embedder.model_name, embedder.dimension, rules)
        store.ensure_index()
        return store

    @property
    def vector_type(self) -> str:
        return "halfvec" if self.dim > HALFVEC_ABOVE else "vector"

    def _vector(self, column: str = "embedding") -> sql.Composable:
        """``embedding::vector(d)``: the expression the partial HNSW index is built on."""
        return sql.SQL("{}::{}({})").format(sql.Identifier(column), sql.SQL(self.vector_type), sql.Literal(self.dim))

    def ensure_index(self) -> None:
        """The HNSW (cosine) index for this dimension, partial on ``dim = d``; created once."""
        name = sql.Identifier(f"memories_hnsw_{self.vector_type}_{self.dim}")
        with self.db.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON memories USING hnsw (({}) {}) WHERE dim = {}").format(
                    name, self._vector(), sql.SQL(f"{self.vector_type}_cosine_ops"), sql.Literal(self.dim)
                )
            )

    def check(self, user_input: str, assistant_response: str) -> None:
        if not user_input.strip() and not assistant_response.strip():
            raise MemoryRejected("nothing to save: user_input and assistant_response are both empty")
        size = len(user_input) + len(assistant_response)
        if size > self.rules.max_chars:
            raise MemoryRejected(
                f"memory too large: {size:,} characters; the limit is {self.rules.max_chars:,} "
                "(SAGE_MEMORY_MAX_CHARS). Save a summary, or split it into several turns."
            )

    @staticmethod
    def content_hash(session_id: str, user_input: str, assistant_response: str) -> str:
        return text_hash("\x00".join((session_id, user_input, assistant_response)))

    def find_duplicate(
        self, user_id: str, session_id: str, digest: str, idempotency_key: str | None, conn: Any = None
    ) -> SavedMemory | None:
        """The memory a retry of this save (same user and session) would repeat, if one is stored."""
        query = sql.SQL(
            """SELECT memory_id::text, session_id, user_id, 'idempotency_key' FROM memories
               WHERE user_id = %(user)s AND session_id = %(session)s AND idempotency_key = %(key)s
               UNION ALL
               (SELECT memory_id::text, session_id, user_id, 'content' FROM memories
                WHERE user_id = %(user)s AND session_id = %(session)s AND content_hash = %(digest)s
                  AND created_at > clock_timestamp() - make_interval(secs => %(window)s)
                ORDER BY created_at DESC LIMIT 1)
               LIMIT 1"""
        )
        values = {"key": idempotency_key, "user": user_id, "session": session_id, "digest": digest,
                  "window": self.rules.dedup_seconds}  # fmt: skip
        if conn is None:
            with self.db.pool.connection() as pooled:
                row = pooled.execute(query, values).fetchone()
        else:
            row = conn.execute(query, values).fetchone()
        return SavedMemory(row[0], row[1], row[2], False, row[3]) if row else None

    def save(
        self,
        user_input: str,
        assistant_response: str,
        *,
        user_id: str,
        session_id: str,
        vector: np.ndarray,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> SavedMemory:
        self.check(user_input, assistant_response)
        digest = self.content_hash(session_id, user_input, assistant_response)
        text = f"{user_input}\n{assistant_response}"
        config = text_search_config(text)
        scope = f"{user_id}/{session_id}"  # neither may contain a slash
        lock_key = f"key:{scope}:{idempotency_key}" if idempotency_key else f"content:{scope}:{digest}"
        with self.db.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key,))
            duplicate = self.find_duplicate(user_id, session_id, digest, idempotency_key, conn)
            if duplicate is not None:
                return duplicate
            conn.execute(
                """INSERT INTO memory_sessions (user_id, session_id) VALUES (%s, %s)
                   ON CONFLICT (user_id, session_id) DO UPDATE SET updated_at = now()""",
                (user_id, session_id),
            )
            memory_id = str(uuid.uuid4())
            conn.execute(
                """INSERT INTO memories (memory_id, user_id, session_id, user_input, assistant_response, model, dim,
                                         embedding, metadata, content_hash, idempotency_key, tsv)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, to_tsvector(%s::regconfig, %s))""",
                (memory_id, user_id, session_id, user_input, assistant_response, self.model, self.dim,
                 np.asarray(vector, dtype=np.float32), Jsonb(metadata or {}), digest, idempotency_key,
                 config, searchable_text(text, config) or text),
            )  # fmt: skip
        return SavedMemory(memory_id, session_id, user_id, True)

    def search(
        self,
        query: str,
        vector: np.ndarray,
        *,
        limit: int = 10,
        min_similarity: float = 0.0,
        user_id: str | None,
        session_id: str | None = None,
    ) -> list[MemoryHit]:
        """Hybrid: nearest memories by vector and by full text, fused by RRF; ties newest first.
        ``user_id`` None searches every user's memories (admins only)."""
        config = text_search_config(query)
        scope = _scope(user_id, session_id)
        statement = sql.SQL(
            """WITH dense AS MATERIALIZED (
                   SELECT memory_id, row_number() OVER () AS rank FROM (
                       SELECT memory_id FROM memories
                       WHERE dim = {dim} AND model = %(model)s {scope}
                       ORDER BY {vector} <=> %(vector)s::{vtype} LIMIT %(depth)s) nearest),
               q AS (SELECT websearch_to_tsquery(%(config)s::regconfig, %(text)s) AS query),
               sparse AS MATERIALIZED (
                   SELECT memory_id, row_number() OVER (ORDER BY ts_rank(tsv, q.query) DESC, created_at DESC) AS rank
                   FROM (SELECT memory_id, tsv, created_at FROM memories, q
                         WHERE tsv @@ q.query AND dim = {dim} AND model = %(model)s {scope}
                         LIMIT %(depth)s) matched, q),
               fused AS (
                   SELECT memory_id, sum(1.0 / (%(rrf_k)s + rank)) AS score
                   FROM (SELECT * FROM dense UNION ALL SELECT * FROM sparse) ranked GROUP BY memory_id)
               SELECT m.memory_id::text, m.session_id, m.user_id, m.user_input, m.assistant_response, m.metadata, m.created_at,
                      1 - ({vector} <=> %(vector)s::{vtype}) AS similarity, f.score
               FROM fused f JOIN memories m USING (memory_id)
               WHERE 1 - ({vector} <=> %(vector)s::{vtype}) >= %(min_similarity)s
               ORDER BY f.score DESC, m.created_at DESC LIMIT %(limit)s"""
        ).format(dim=sql.Literal(self.dim), scope=scope, vector=self._vector(), vtype=sql.SQL(f"{self.vector_type}"))
        values = {
            "model": self.model, "user": user_id, "session": session_id, "vector": np.asarray(vector, dtype=np.float32),
            "depth": max(self.rules.candidate_depth, limit), "config": config,
            "text": websearch_query(searchable_text(query, config) or query), "rrf_k": RRF_K, "min_similarity": min_similarity, "limit": limit,
        }  # fmt: skip
        with self.db.pool.connection() as conn:
            rows = conn.execute(statement, values).fetchall()
        return [
            MemoryHit(m, s, owner, u, a, meta, at, round(float(sim), 4), round(float(score), 6))
            for m, s, owner, u, a, meta, at, sim, score in rows
        ]

    def stats(self, user_id: str | None) -> dict[str, Any]:
        """Memory counts per session and in total, for one user (None: every user)."""
        with self.db.pool.connection() as conn:
            sessions = conn.execute(
                """SELECT s.user_id, s.session_id, s.title, count(m.memory_id), max(m.created_at)
                   FROM memory_sessions s LEFT JOIN memories m USING (user_id, session_id)
                   WHERE %(user)s::text IS NULL OR s.user_id = %(user)s
                   GROUP BY s.user_id, s.session_id, s.title ORDER BY max(m.created_at) DESC NULLS LAST""",
                {"user": user_id},
            ).fetchall()
            models = conn.execute(
                "SELECT model, dim, count(*) FROM memories WHERE %(user)s::text IS NULL OR user_id = %(user)s"
                " GROUP BY model, dim",
                {"user": user_id},
            ).fetchall()
        return {
            "total_memories": sum(count for _, _, _, count, _ in sessions),
            "sessions": [
                {
                    "session_id": s,
                    "user_id": u,
                    "title": t,
                    "memories": c,
                    "last_saved": last.isoformat() if last else None,
                }
                for u, s, t, c, last in sessions
            ],  # fmt: skip
            "embedding_model": self.model,
            "embedding_dimension": self.dim,
            "vector_type": self.vector_type,
            "stored_models": [{"model": m, "dimension": d, "memories": c} for m, d, c in models],
        }

    def session_owners(self, session_id: str) -> list[str]:
        """The users who have a session of this name (for the local CLI, which acts for every user)."""
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                "SELECT user_id FROM memory_sessions WHERE session_id = %s ORDER BY user_id", (session_id,)
            ).fetchall()
        return [row[0] for row in rows]

    def session_info(self, user_id: str, session_id: str) -> dict[str, Any] | None:
        with self.db.pool.connection() as conn:
            row = conn.execute(
                """SELECT s.session_id, s.title, s.metadata, s.created_at, count(m.memory_id), max(m.created_at)
                   FROM memory_sessions s LEFT JOIN memories m USING (user_id, session_id)
                   WHERE s.user_id = %s AND s.session_id = %s GROUP BY s.user_id, s.session_id""",
                (user_id, session_id),
            ).fetchone()
        if row is None:
            return None
        sid, title, metadata, created, count, last = row
        return {"session_id": sid, "user_id": user_id, "title": title, "metadata": metadata,
                "created_at": created.isoformat(), "memories": count,
                "last_saved": last.isoformat() if last else None}  # fmt: skip

    def create_session(self, user_id: str, session_id: str | None = None, title: str = "") -> dict[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        with self.db.pool.connection() as conn:
            conn.execute(
                """INSERT INTO memory_sessions (user_id, session_id, title) VALUES (%s, %s, %s)
                   ON CONFLICT (user_id, session_id) DO UPDATE
                   SET title = coalesce(nullif(EXCLUDED.title, ''), memory_sessions.title), updated_at = now()""",
                (user_id, session_id, title),
            )
        info = self.session_info(user_id, session_id)
        assert info is not None
        return info

    def session_memories(self, user_id: str, session_id: str, limit: int = 200) -> list[MemoryHit]:
        with self.db.pool.connection() as conn:
            rows = conn.execute(
                """SELECT memory_id::text, session_id, user_id, user_input, assistant_response, metadata, created_at
                   FROM memories WHERE user_id = %s AND session_id = %s ORDER BY created_at DESC LIMIT %s""",
                (user_id, session_id, limit),
            ).fetchall()
        return [MemoryHit(m, s, u, q, a, meta, at, 1.0, 0.0) for m, s, u, q, a, meta, at in rows]

    def clear_session(self, user_id: str, session_id: str) -> int:
        with self.db.pool.connection() as conn, conn.transaction():
            deleted = conn.execute(
                "DELETE FROM memories WHERE user_id = %s AND session_id = %s", (user_id, session_id)
            ).rowcount
            conn.execute("DELETE FROM memory_sessions WHERE user_id = %s AND session_id = %s", (user_id, session_id))
        return int(deleted)


def _scope(user_id: str | None, session_id: str | None) -> sql.Composable:
    """The WHERE clause fragment that keeps a search inside one user (and session)."""
    parts = []
    if user_id is not None:
        parts.append(sql.SQL("AND user_id = %(user)s"))
    if session_id:
        parts.append(sql.SQL("AND session_id = %(session)s"))
    return sql.SQL(" ").join(parts)
