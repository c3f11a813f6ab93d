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
        -- One round trip per start: the user's starts queue on an advisory lock, and the count that
        -- follows (a new snapshot, in a function) sees every lease committed before it.
        -- One round trip per start: 'taken', or why not ('busy', 'quota', 'full'). Starts queue on an
        -- advisory lock (the user's; everyone's when there is a total cap), and the counts that follow
        -- (a new snapshot, in a function) see every lease committed before them.
        CREATE FUNCTION sage_take_stream_lease(
            p_session text, p_run text, p_user text, p_holder text, p_ttl double precision,
            p_max_per_user integer, p_take_over text, p_max_total integer
        ) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
            IF p_max_total > 0 THEN
                PERFORM pg_advisory_xact_lock(7, 0);
                IF (SELECT count(*) FROM agent_stream_leases
                    WHERE expires_at > clock_timestamp() AND session_id <> p_session) >= p_max_total THEN
                    RETURN 'full';
                END IF;
            END IF;
            PERFORM pg_advisory_xact_lock(hashtextextended(p_user, 7));
            IF (SELECT count(*) FROM agent_stream_leases
                WHERE user_id = p_user AND expires_at > clock_timestamp() AND session_id <> p_session)
               >= p_max_per_user THEN
                RETURN 'quota';
            END IF;
            INSERT INTO agent_stream_leases AS held (session_id, run_id, user_id, holder, started_at, expires_at)
            VALUES (p_session, p_run, p_user, p_holder, clock_timestamp(),
                    clock_timestamp() + make_interval(secs => p_ttl))
            ON CONFLICT (session_id) DO UPDATE SET run_id = excluded.run_id, user_id = excluded.user_id,
                holder = excluded.holder, started_at = excluded.started_at, expires_at = excluded.expires_at
                WHERE held.expires_at <= clock_timestamp() OR held.holder LIKE p_take_over;
            RETURN CASE WHEN FOUND THEN 'taken' ELSE 'busy' END;
        END
        $$;
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
    op.execute("DROP TABLE agent_stream_events; DROP FUNCTION sage_take_stream_lease; DROP TABLE agent_stream_leases;")
