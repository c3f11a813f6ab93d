"""One memory store: the agent's remembered facts move from ``agent_memories`` into ``memories``.

Each fact becomes a memory of its user and session (the session is created if the memory server
never saw it) with the text as ``user_input``, an empty response, ``metadata.kind = "fact"``, and the
idempotency key ``fact:<sha256 of the text>`` that keeps one copy per session, as before. Full-text
vectors of moved facts use the English configuration; new facts get the per-language one.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"

UPGRADE = """
INSERT INTO memory_sessions (user_id, session_id)
SELECT DISTINCT user_id, session_id FROM agent_memories
ON CONFLICT (user_id, session_id) DO NOTHING;

INSERT INTO memories (memory_id, user_id, session_id, user_input, assistant_response, model, dim, embedding,
                      metadata, content_hash, idempotency_key, tsv, created_at, updated_at)
SELECT gen_random_uuid(), user_id, session_id, text, '', model, dim, embedding,
       '{"kind": "fact", "source": "agent"}'::jsonb,
       encode(sha256(convert_to(session_id, 'UTF8') || '\\x00'::bytea || convert_to(text, 'UTF8') || '\\x00'::bytea), 'hex'),
       'fact:' || text_hash, to_tsvector('english', text), created_at, created_at
FROM agent_memories
ON CONFLICT (user_id, session_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

DROP TABLE agent_memories;
"""

DOWNGRADE = """
CREATE TABLE agent_memories (
    memory_id   bigserial PRIMARY KEY,
    user_id     text NOT NULL,
    session_id  text NOT NULL,
    text        text NOT NULL,
    text_hash   text NOT NULL,
    model       text NOT NULL,
    dim         integer NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, session_id, text_hash)
);
CREATE INDEX agent_memories_user ON agent_memories (user_id, model);
INSERT INTO agent_memories (user_id, session_id, text, text_hash, model, dim, embedding, created_at)
SELECT user_id, session_id, user_input, substr(idempotency_key, 6), model, dim, embedding, created_at
FROM memories WHERE metadata->>'kind' = 'fact' AND idempotency_key LIKE 'fact:%';
DELETE FROM memories WHERE metadata->>'kind' = 'fact' AND idempotency_key LIKE 'fact:%';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
