"""Identities: keys that belong to users (some admins) for both servers; memory sessions get owners.

``api_keys`` replaces ``mcp_tokens``: existing memory-server tokens become keys of the user
``default`` (audience ``mcp``), and existing memory sessions belong to ``default`` too, so a token that
worked before still sees what it saw. Memory sessions are namespaced by their owner: two users may both
have a session called ``main``. Idempotency keys are scoped to their session.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            key_id      text PRIMARY KEY,
            key_hash    text NOT NULL UNIQUE,
            user_id     text NOT NULL,
            admin       boolean NOT NULL DEFAULT false,
            audience    text NOT NULL CHECK (audience IN ('api', 'mcp')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            last_used   timestamptz,
            revoked_at  timestamptz
        );
        CREATE INDEX api_keys_user ON api_keys (user_id);
        INSERT INTO api_keys (key_id, key_hash, user_id, audience, created_at, last_used)
            SELECT 'k_' || left(token_hash, 12), token_hash, 'default', 'mcp', created_at, last_used FROM mcp_tokens;
        DROP TABLE mcp_tokens;

        ALTER TABLE memories DROP CONSTRAINT memories_session_id_fkey;
        ALTER TABLE memory_sessions ADD COLUMN user_id text NOT NULL DEFAULT 'default';
        ALTER TABLE memory_sessions ALTER COLUMN user_id DROP DEFAULT;
        ALTER TABLE memory_sessions DROP CONSTRAINT memory_sessions_pkey;
        ALTER TABLE memory_sessions ADD PRIMARY KEY (user_id, session_id);
        ALTER TABLE memories ADD COLUMN user_id text NOT NULL DEFAULT 'default';
        ALTER TABLE memories ALTER COLUMN user_id DROP DEFAULT;
        ALTER TABLE memories ADD FOREIGN KEY (user_id, session_id)
            REFERENCES memory_sessions (user_id, session_id) ON DELETE CASCADE;
        ALTER TABLE memories DROP CONSTRAINT memories_idempotency_key_key;
        CREATE UNIQUE INDEX memories_idempotency ON memories (user_id, session_id, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        DROP INDEX memories_session_created;
        DROP INDEX memories_content;
        CREATE INDEX memories_session_created ON memories (user_id, session_id, created_at DESC);
        CREATE INDEX memories_content ON memories (user_id, session_id, content_hash, created_at DESC);
        CREATE INDEX memories_user ON memories (user_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX memories_user;
        DROP INDEX memories_idempotency;
        DROP INDEX memories_session_created;
        DROP INDEX memories_content;
        ALTER TABLE memories DROP CONSTRAINT memories_user_id_session_id_fkey;
        ALTER TABLE memories DROP COLUMN user_id;
        ALTER TABLE memory_sessions DROP CONSTRAINT memory_sessions_pkey;
        ALTER TABLE memory_sessions DROP COLUMN user_id;
        ALTER TABLE memory_sessions ADD PRIMARY KEY (session_id);
        ALTER TABLE memories ADD FOREIGN KEY (session_id) REFERENCES memory_sessions ON DELETE CASCADE;
        ALTER TABLE memories ADD CONSTRAINT memories_idempotency_key_key UNIQUE (idempotency_key);
        CREATE INDEX memories_session_created ON memories (session_id, created_at DESC);
        CREATE INDEX memories_content ON memories (session_id, content_hash, created_at DESC);
        CREATE TABLE mcp_tokens (
            token_hash  text PRIMARY KEY,
            name        text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            last_used   timestamptz
        );
        INSERT INTO mcp_tokens (token_hash, name, created_at, last_used)
            SELECT key_hash, user_id, created_at, last_used FROM api_keys WHERE audience = 'mcp';
        DROP TABLE api_keys;
        """
    )
