"""Agent streams shared by many server processes: a lease per running session, and the messages of a
stream another process follows.

A lease is held while one process streams the session and renewed by it; a holder that dies stops
renewing, and the lease expires. ``agent_stream_events`` holds the stream of a run only while another
process follows it (written on request, swept once the run is over).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE agent_stream_leases (
            session_id text PRIMARY KEY,
            run_id     text NOT NULL UNIQUE,
            user_id    text NOT NULL,
            holder     text NOT NULL,
            started_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX agent_stream_leases_user ON agent_stream_leases (user_id, expires_at);
        CREATE INDEX agent_stream_leases_holder ON agent_stream_leases (holder);
        CREATE TABLE agent_stream_events (
            run_id     text NOT NULL,
            seq        integer NOT NULL,
            line       text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (run_id, seq)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE agent_stream_events; DROP TABLE agent_stream_leases;")
