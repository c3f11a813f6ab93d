"""Alembic migrations, run in-process under an advisory lock so that concurrent processes agree."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from sage_platform.package_files import MIGRATIONS_DIR

VERSION_TABLE = "sage_alembic_version"  # Dagster keeps its own alembic_version in the same server
_LOCK_ID = 0x5A6E_0001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
