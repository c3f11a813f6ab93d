"""The streaming agent server: ``sage serve`` (and ``sage up``) on 127.0.0.1:8080.

Usage::

    from sage_platform.server import create_app, serve
    serve(Settings())                    # blocks; SIGINT stops it cleanly
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI

from sage_platform.config import Settings
from sage_platform.server.app import create_app

__all__ = ["create_app", "serve"]


def serve(settings: Settings) -> None:
    """Serve until SIGINT. With ``settings.workers`` > 1, that many processes share the port (uvicorn's
    supervisor restarts one that dies); they read their settings from ``SAGE_*``, which the ``sage``
    command exports, and share sessions, leases and quotas through the database."""
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,  # at hundreds of requests a second, a line each costs real CPU
        "timeout_graceful_shutdown": 5,
    }
    if settings.workers == 1:
        log_to_file(settings)
        uvicorn.run(create_app(settings), **options)
        return
    from sage_platform.db import Database

    # One process starts the embedded server and migrates; the workers only connect.
    os.environ["SAGE_DATABASE_URL"] = Database.from_settings(settings).url
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=settings.workers, **options)


def app_from_environment() -> FastAPI:
    """A worker's app (``sage serve --workers N``): its settings from the environment its parent set."""
    settings = Settings()
    log_to_file(settings)
    return create_app(settings)


def log_to_file(settings: Settings) -> None:
    logs = settings.server_logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "server.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("sage_platform").addHandler(handler)
