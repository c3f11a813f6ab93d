"""Migration 0009: the agent's facts move into the one memory store, and back on downgrade."""

from __future__ import annotations

import numpy as np
from alembic import command
from sqlalchemy import create_engine

from sage_platform.agent.memory import AgentMemory
from sage_platform.db import Database
from sage_platform.db.migrate import alembic_config, upgrade
from sage_platform.db.urls import sqlalchemy_url
from sage_platform.embeddings.local import LocalEmbedder
from sage_platform.memory_store import MemoryStore


def test_facts_move_into_memories_are_found_by_the_one_search_and_move_back(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    upgrade(engine, "0008")
    embedder = LocalEmbedder()
    facts = [("ada", "s1", "Ada prefers answers in French."), ("ada", "s2", "Ada's build runs on Fridays."),
             ("bob", "s1", "Bob reviews every migration.")]  # fmt: skip
    db = Database(database_url)
    with db.connect() as conn:
        for user, session, text in facts:
            conn.execute(
                """INSERT INTO agent_memories (user_id, session_id, text, text_hash, model, dim, embedding)
                   VALUES (%s, %s, %s, encode(sha256(convert_to(%s, 'UTF8')), 'hex'), %s, %s, %s)""",
                (user, session, text, text, embedder.model_name, embedder.dimension,
                 np.asarray(embedder.embed([text])[0], dtype=np.float32)),
            )  # fmt: skip
    upgrade(engine, "head")
    with db.connect() as conn:
        assert conn.execute("SELECT to_regclass('agent_memories')").fetchone() == (None,)
        moved = conn.execute(
            "SELECT user_id, session_id, user_input, metadata->>'kind' FROM memories ORDER BY user_id, session_id"
        ).fetchall()
        sessions = conn.execute("SELECT user_id, session_id FROM memory_sessions ORDER BY 1, 2").fetchall()
    assert moved == [(u, s, t, "fact") for u, s, t in sorted(facts)]
    assert sessions == [("ada", "s1"), ("ada", "s2"), ("bob", "s1")]

    store = MemoryStore(db, embedder.model_name, embedder.dimension)
    store.ensure_index()
    memory = AgentMemory(store, embedder)
    recalled = memory.recall("ada", "s9", "which language does Ada like?", memory_type="user")
    assert recalled[0]["text"] == "Ada prefers answers in French." and recalled[0]["kind"] == "fact"
    assert {r["text"] for r in recalled} <= {t for u, _, t in facts if u == "ada"}  # never bob's
    again = memory.remember("ada", "s1", "Ada prefers answers in French.")  # the moved copy is the same fact
    assert not again["stored"]

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    with db.connect() as conn:
        back = conn.execute("SELECT user_id, session_id, text FROM agent_memories ORDER BY 1, 2").fetchall()
        left = conn.execute("SELECT count(*) FROM memories").fetchone()
    assert back == sorted(facts) and left == (0,)
    db.close()
    engine.dispose()
