"""Alembic migrations, run in-process under an advisory lock so that concurrent processes agree."""

from __future__ import annotations

import functools

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql
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


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def at_head(url: str) -> bool:
    """Whether the database is at the newest migration: one query, where Alembic's own check (its
    scripts loaded, an engine made) takes some 60 ms of every run."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone() == (None,):
            return False
        rows = conn.execute(sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(VERSION_TABLE))).fetchall()
    return [row[0] for row in rows] == [head_revision()]
