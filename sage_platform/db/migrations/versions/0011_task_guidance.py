"""User guidance for agent tasks: messages posted to a session whose run is a Dagster task in another
process, taken by that run at its next step.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE agent_guidance (
            guidance_id bigserial PRIMARY KEY,
            task_id     text NOT NULL REFERENCES agent_tasks ON DELETE CASCADE,
            content     text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
            taken_at    timestamptz
        );
        CREATE INDEX agent_guidance_waiting ON agent_guidance (task_id) WHERE taken_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE agent_guidance;")
