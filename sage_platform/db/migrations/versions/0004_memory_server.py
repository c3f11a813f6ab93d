"""The MCP memory server: sessions, memories (vectors of any dimension) and hashed bearer tokens.

``embedding`` has no fixed dimension, so one table serves any embedder; the server creates an HNSW
index per dimension it uses, on ``embedding::vector(d)`` (``halfvec(d)`` above 2,000 dimensions,
pgvector's limit for indexing full-precision vectors), partial on ``dim = d``.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE memory_sessions (
            session_id  text PRIMARY KEY,
            title       text NOT NULL DEFAULT '',
            metadata    jsonb NOT NULL DEFAULT '{}',
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE memories (
            memory_id           uuid PRIMARY KEY,
            session_id          text NOT NULL REFERENCES memory_sessions ON DELETE CASCADE,
            user_input          text NOT NULL,
            assistant_response  text NOT NULL,
            model               text NOT NULL,
            dim                 integer NOT NULL,
            embedding           vector NOT NULL,
            metadata            jsonb NOT NULL DEFAULT '{}',
            content_hash        text NOT NULL,
            idempotency_key     text UNIQUE,
            tsv                 tsvector NOT NULL,
            created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at          timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX memories_session_created ON memories (session_id, created_at DESC);
        CREATE INDEX memories_content ON memories (session_id, content_hash, created_at DESC);
        CREATE INDEX memories_tsv ON memories USING gin (tsv);
        CREATE TABLE mcp_tokens (
            token_hash  text PRIMARY KEY,
            name        text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            last_used   timestamptz
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE mcp_tokens; DROP TABLE memories; DROP TABLE memory_sessions;")
