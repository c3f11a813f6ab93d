"""Run-failure alerts: what failed, why, and whether the webhook took it.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE alerts (
            alert_id      bigserial PRIMARY KEY,
            run_id        text NOT NULL UNIQUE,
            job_name      text NOT NULL,
            error         text NOT NULL,
            tags          jsonb NOT NULL DEFAULT '{}',
            webhook       text,               -- delivered | failed: <reason> | NULL when none is set
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE alerts")
