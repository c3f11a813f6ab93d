"""The agent's workspace files: one row per stored version, owned by a user and a session. The bytes
live in the file store (a local folder or an S3 bucket) under ``storage_key``, never under a name a
user gave.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE workspace_files (
            file_id      text PRIMARY KEY,
            user_id      text NOT NULL,
            session_id   text NOT NULL,
            name         text NOT NULL,
            version      integer NOT NULL,
            content_type text NOT NULL,
            size         bigint NOT NULL,
            sha256       text NOT NULL,
            storage_key  text NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            deleted_at   timestamptz,
            UNIQUE (user_id, session_id, name, version)
        );
        CREATE INDEX workspace_files_session ON workspace_files (user_id, session_id) WHERE deleted_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE workspace_files;")
