"""Per-session knowledge bases: workspace files chunked and embedded (on first search), searched exactly.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE workspace_chunks (
            file_id   text NOT NULL REFERENCES workspace_files ON DELETE CASCADE,
            position  integer NOT NULL,
            text      text NOT NULL,
            embedding vector NOT NULL,
            PRIMARY KEY (file_id, position)
        );
        ALTER TABLE workspace_files ADD COLUMN indexed_at timestamptz, ADD COLUMN index_error text;
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE workspace_chunks; ALTER TABLE workspace_files DROP COLUMN indexed_at, DROP COLUMN index_error;"
    )
