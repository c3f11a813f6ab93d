"""The streaming agent server: ``sage serve`` (and ``sage up``) on 127.0.0.1:8080.

Usage::

    from sage_platform.server import create_app, serve
    serve(Settings())                    # blocks; SIGINT stops it cleanly
"""

from __future__ import annotations

from sage_platform.config import Settings
from sage_platform.server.app import create_app

__all__ = ["create_app", "serve"]


def serve(settings: Settings) -> None:
    import logging

    import uvicorn

    logs = settings.server_logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(logs / "server.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("sage_platform").addHandler(handler)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # at hundreds of requests a second, a line each costs real CPU
        timeout_graceful_shutdown=5,
    )
