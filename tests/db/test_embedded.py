"""The embedded server: a throwaway cluster is discarded at once, and comes back intact if started."""

from __future__ import annotations

from pathlib import Path

import psycopg

from sage_platform.db import start_embedded_server, stop_embedded_server
from sage_platform.db.embedded import discard_embedded_server, embedded_server_running


def test_a_discarded_server_stops_without_its_checkpoint_and_loses_nothing_committed(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # the server runs as its own system user when tests run as root
    pgdata = tmp_path / "pg"
    try:
        with psycopg.connect(start_embedded_server(pgdata), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept AS SELECT g FROM generate_series(1, 1000) g")
        discard_embedded_server(pgdata)
        assert not embedded_server_running(pgdata)
        with psycopg.connect(start_embedded_server(pgdata)) as conn:  # recovers from its write-ahead log
            assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
    finally:
        stop_embedded_server(pgdata)
    discard_embedded_server(pgdata)  # none running: nothing to do
