"""Database access: the platform database, the embedded server and migrations."""

from sage_platform.db.database import DAGSTER_DATABASE, PLATFORM_DATABASE, Database, dagster_storage_url
from sage_platform.db.embedded import embedded_server_running, start_embedded_server, stop_embedded_server

__all__ = [
    "DAGSTER_DATABASE",
    "PLATFORM_DATABASE",
    "Database",
    "dagster_storage_url",
    "embedded_server_running",
    "start_embedded_server",
    "stop_embedded_server",
]
