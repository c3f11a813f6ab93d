"""Answers keep what they were answered from: a hash of the answerer and the context it was given, so a
re-run answers again only the questions whose retrieved context (or answerer) changed.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.execute("ALTER TABLE rag_answers ADD COLUMN context_hash text, ADD COLUMN reused boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE rag_answers DROP COLUMN context_hash, DROP COLUMN reused")
