"""The platform database: connection factory, first-time creation and migrations.

Usage::

    db = Database.from_settings(settings)   # starts the embedded server when no URL is set
    with db.connect() as conn:
        conn.execute("SELECT count(*) FROM documents").fetchone()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine

from sage_platform.config import Settings
from sage_platform.db._idle import IdleConnections
from sage_platform.db.embedded import start_embedded_server
from sage_platform.db.urls import database_name, libpq_url, sqlalchemy_url, with_database

PLATFORM_DATABASE = "sage"
DAGSTER_DATABASE = "dagster"


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database holding the platform's tables."""

    url: str
    read_url: str | None = None  # a read replica for searches (SAGE_DATABASE_READ_URL)

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Database:
        read_url = libpq_url(settings.database_read_url) if settings.database_read_url else None
        if settings.database_url:
            db = cls(libpq_url(settings.database_url), read_url)
        else:
            server = start_embedded_server(settings.pgdata_dir)
            ensure_database(server, PLATFORM_DATABASE)
            db = cls(with_database(server, PLATFORM_DATABASE), read_url)
        if migrate:
            db.migrate()
        return db

    @property
    def name(self) -> str:
        return database_name(self.url)

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A psycopg 3 connection with the pgvector types registered. Commits on success.

        The connection is one this process kept from an earlier ``connect()`` (reset first) or a new one;
        after a block that raised it is closed, so whatever it held is rolled back by the server.
        """
        conn = self._idle.take()
        try:
            conn.autocommit = autocommit
            yield conn
            if not conn.closed and not autocommit:
                conn.commit()
        except BaseException:
            conn.close()
            raise
        self._idle.give_back(conn)

    @cached_property
    def _idle(self) -> IdleConnections:
        return IdleConnections(self.url)

    @cached_property
    def pool(self) -> ConnectionPool:
        """A small autocommit pool on the primary: request-sized reads and writes without connection setup.

        Each connection has pgvector's types and HNSW iterative scans (strict order), so filtered
        searches still return k rows.
        """
        return _reader_pool(self.url, f"sage-{self.name}")

    @cached_property
    def search_pool(self) -> ConnectionPool:
        """Where searches read: the read replica when one is set, else the primary's pool."""
        return _reader_pool(self.read_url, f"sage-{self.name}-replica") if self.read_url else self.pool

    def close(self) -> None:
        """Close the pools and the migration engine, if they were opened."""
        idle = self.__dict__.pop("_idle", None)
        if idle is not None:
            idle.close()
        for name in ("search_pool", "pool"):
            pool = self.__dict__.pop(name, None)
            if pool is not None and not pool.closed:
                pool.close()
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()

    @cached_property
    def engine(self) -> Engine:
        return create_engine(sqlalchemy_url(self.url), pool_pre_ping=True)

    def migrate(self) -> None:
        from sage_platform.db.migrate import at_head, upgrade

        if at_head(self.url):
            return
        try:
            upgrade(self.engine)
        finally:  # migrations run once per process: no pooled connection is kept for them
            engine = self.__dict__.pop("engine", None)
            if engine is not None:
                engine.dispose()


def _reader_pool(url: str, name: str) -> ConnectionPool:
    return ConnectionPool(
        url,
        min_size=0,  # no idle connection held for a process that never searches again
        max_size=8,
        max_idle=60,
        kwargs={"autocommit": True},
        configure=_configure_reader,
        open=True,
        name=name,
    )


def _configure_reader(conn: psycopg.Connection) -> None:
    register_vector(conn)
    conn.execute("SET hnsw.iterative_scan = strict_order")
    # Searches are short: compiling one with JIT costs more than it can save, and makes the tail.
    conn.execute("SET jit = off")


def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server if it is missing."""
    with psycopg.connect(with_database(server_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another process was first
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def dagster_storage_url(settings: Settings) -> str:
    """Where Dagster keeps runs, events and schedules, spelled for dagster-postgres."""
    if settings.dagster_database_url:
        return sqlalchemy_url(settings.dagster_database_url, "psycopg2")
    if settings.database_url:
        return sqlalchemy_url(settings.database_url, "psycopg2")
    server = start_embedded_server(settings.pgdata_dir)
    ensure_database(server, DAGSTER_DATABASE)
    return sqlalchemy_url(with_database(server, DAGSTER_DATABASE), "psycopg2")
