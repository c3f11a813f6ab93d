"""The agent's long-term memory: facts the model chose to ``remember``, recalled by meaning.

Kept in the one memory store (``sage_platform.memory_store``) that the memory server also serves, so a
user's facts and coding-agent turns are searched together by the same hybrid search.
``memory_type="user"`` recalls across all of a user's sessions; ``"session"`` only within one.
Saving the same text twice in the same session stores it once.

Usage::

    memory = AgentMemory(MemoryStore.for_settings(settings, db, embedder), embedder)
    memory.remember("alice", "s1", "Alice prefers answers in French.")
    memory.recall("alice", "s2", "language preference", memory_type="user")
"""

from __future__ import annotations

from typing import Any, Literal

from sage_platform.embeddings.base import Embedder
from sage_platform.hashing import text_hash
from sage_platform.memory_store import MemoryHit, MemoryStore

FACT = {"kind": "fact", "source": "agent"}


class AgentMemory:
    def __init__(self, store: MemoryStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def remember(self, user_id: str, session_id: str, text: str) -> dict[str, Any]:
        text = text.strip()
        if not text:
            raise ValueError("nothing to remember: the text is empty")
        self.store.check(text, "")  # before embedding: an oversized fact costs nothing
        saved = self.store.save(
            text, "", user_id=user_id, session_id=session_id, vector=self.embedder.embed([text])[0],
            metadata=FACT, idempotency_key=f"fact:{text_hash(text)}",  # the same fact in a session: once
        )  # fmt: skip
        return {"memory_id": saved.memory_id, "stored": saved.created, "text": text}

    def recall(
        self, user_id: str, session_id: str, query: str, *, k: int = 5, memory_type: Literal["session", "user"]
    ) -> list[dict[str, Any]]:
        if not query.strip():
            return []
        scope = session_id if memory_type == "session" else None
        hits = self.store.search(query, self.embedder.embed([query])[0], limit=k, user_id=user_id, session_id=scope)
        return [_recalled(hit) for hit in hits]


def _recalled(hit: MemoryHit) -> dict[str, Any]:
    text = "\n".join(part for part in (hit.user_input, hit.assistant_response) if part)
    kind = hit.metadata.get("kind", "turn")
    return {"memory_id": hit.memory_id, "text": text, "kind": kind, "session_id": hit.session_id,
            "score": hit.similarity}  # fmt: skip
