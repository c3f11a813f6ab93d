"""The agent server's long-term memory: remembered facts as vectors, recalled per user or session.

The vector column has no fixed dimension (the embedder may change); ``model`` and ``dim`` say
what each row holds, and recall scans one user's rows exactly, which stays small.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
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
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE agent_memories")
