"""Long-running agent tasks run by Dagster, and every stream message they produce.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE agent_tasks (
            task_id         text PRIMARY KEY,
            status          text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
            request         jsonb NOT NULL,
            user_id         text NOT NULL,
            session_id      text NOT NULL,
            dagster_run_id  text,           -- the run that owns it now; only that run may write or finish it
            attempts        integer NOT NULL DEFAULT 0,
            error           text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            started_at      timestamptz,
            finished_at     timestamptz
        );
        CREATE INDEX agent_tasks_pending ON agent_tasks (created_at) WHERE status = 'pending';
        CREATE TABLE agent_events (
            task_id     text NOT NULL REFERENCES agent_tasks ON DELETE CASCADE,
            seq         integer NOT NULL,
            message     jsonb NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (task_id, seq)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE agent_events; DROP TABLE agent_tasks;")
