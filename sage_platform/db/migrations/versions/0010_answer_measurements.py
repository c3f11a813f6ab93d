"""What each RAG answer cost: generation latency, prompt and completion tokens, and the context's
tokens (given to the generator, and retrieved), for the evaluation's latency, token and context
compression figures. Null for answers stored before.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """ALTER TABLE rag_answers ADD COLUMN latency_ms double precision, ADD COLUMN prompt_tokens integer,
           ADD COLUMN completion_tokens integer, ADD COLUMN context_tokens integer,
           ADD COLUMN retrieved_tokens integer"""
    )


def downgrade() -> None:
    op.execute(
        """ALTER TABLE rag_answers DROP COLUMN latency_ms, DROP COLUMN prompt_tokens,
           DROP COLUMN completion_tokens, DROP COLUMN context_tokens, DROP COLUMN retrieved_tokens"""
    )
