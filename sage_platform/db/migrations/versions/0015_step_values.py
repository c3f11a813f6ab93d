"""Small values passed between Dagster steps (the embedding fan-out's shard plan), kept in the platform's
database so steps in other processes, containers or Kubernetes Jobs read them without shared disk.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dagster_step_values (
            identifier text PRIMARY KEY,  -- Dagster's output identifier: run, step, output, mapping key
            run_id     text NOT NULL,
            value      jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX dagster_step_values_run_idx ON dagster_step_values (run_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dagster_step_values;")
