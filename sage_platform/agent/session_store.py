"""Sessions, their message history and each run's stream, in SQLAlchemy Core.

``db_type`` picks the engine: ``postgres`` (the platform database), ``file`` (SQLite under ``db_path``
or the data directory), ``memory`` (SQLite in memory) or ``mysql`` (the ``mysql_*`` settings, PyMySQL).
``SAGE_SESSION_DATABASE_URL`` may name any other
SQLAlchemy database, MySQL included (the platform database itself must be PostgreSQL: pgvector).
Calls are synchronous; the server runs them in worker threads.

Usage::

    store = SessionStore.from_settings(settings)
    store.save_turn("s1", "alice", [StoredMessage({"role": "user", "content": "hi"}, 1)], run)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

from sage_platform.agent.pg_turns import PgTurnSaver
from sage_platform.agent.turns import FinishedRun, History, StoredMessage, Turn, session_title
from sage_platform.config import Settings

logger = logging.getLogger(__name__)
metadata = MetaData()
sessions = Table(
    "agent_sessions",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("user_id", String(128), nullable=False, index=True),
    Column("title", Text, nullable=False, default=""),
    Column("summary", Text),
    Column("summary_upto", Integer, nullable=False, default=0),  # history seqs the summary covers
    Column("message_count", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
messages = Table(
    "agent_messages",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("message", JSON, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)
runs = Table(
    "agent_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("session_id", String(128), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("events", JSON, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
)


def mysql_url(settings: Settings) -> URL:
    """db_type mysql: the SQLAlchemy URL from the mysql_* settings (PyMySQL, utf8mb4)."""
    password = settings.mysql_password.get_secret_value() if settings.mysql_password else None
    return URL.create(
        "mysql+pymysql",
        username=settings.mysql_user,
        password=password,
        host=settings.mysql_host,
        port=settings.mysql_port,
        database=settings.mysql_database,
        query={"charset": "utf8mb4"},
    )


def engine_for(settings: Settings, platform_url: str | None) -> Engine:
    if settings.session_database_url:
        return create_engine(settings.session_database_url, pool_pre_ping=True)
    if settings.db_type == "memory":
        return create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    if settings.db_type == "mysql":
        return create_engine(mysql_url(settings), pool_size=8, max_overflow=8, pool_pre_ping=True, pool_recycle=3600)
    if settings.db_type == "file":
        path = (settings.db_path or settings.data_dir).resolve() / "agent_sessions.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        return create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    url = settings.database_url or platform_url
    if url is None:
        raise ValueError("db_type postgres needs the platform database (SAGE_DATABASE_URL or the embedded server)")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


class StoreUnavailable(RuntimeError):
    """The session database cannot be reached; the message names it (never with its password)."""


def store_description(settings: Settings) -> str:
    if settings.session_database_url:
        return "the session database (SAGE_SESSION_DATABASE_URL)"
    if settings.db_type == "mysql":
        return f"MySQL at {settings.mysql_host}:{settings.mysql_port} (db_type mysql, --mysql_host/--mysql_port)"
    return f"the session database (db_type {settings.db_type})"


class SessionStore:
    """Sessions, their messages and runs. A database that is down at start does not stop the server: the
    tables are created on the first call that reaches it, and until then calls raise ``StoreUnavailable``."""

    def __init__(self, engine: Engine, where: str = "the session database") -> None:
        self.engine = engine
        self.where = where
        self._tables = False
        # Turns on PostgreSQL: one statement on a kept connection, without SQLAlchemy in between.
        self._pg_turns: PgTurnSaver | None = None
        if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
            self._pg_turns = PgTurnSaver(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            self._ensure_tables()
        except StoreUnavailable as error:
            logger.error("%s; the server starts, and session calls answer 503 until it can be reached", error)

    @classmethod
    def from_settings(cls, settings: Settings, platform_url: str | None = None) -> SessionStore:
        return cls(engine_for(settings, platform_url), store_description(settings))

    def _ensure_tables(self) -> None:
        if not self._tables:
            with self._reaching(), self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Server workers start together: one creates the tables, the others then find them.
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sage_platform.agent_sessions'))"))
                metadata.create_all(conn)
            self._tables = True

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailable(f"{self.where} cannot be reached: {error.orig or error}") from error

    @contextmanager
    def _connect(self, *, begin: bool = False) -> Iterator[Connection]:
        self._ensure_tables()
        with self._reaching(), self.engine.begin() if begin else self.engine.connect() as conn:
            yield conn

    def reachable(self) -> str | None:
        """None when the database answers; else why not (for /health)."""
        try:
            with self._connect() as conn:
                conn.execute(select(1))
        except StoreUnavailable as error:
            return str(error)
        return None

    def history(self, session_id: str) -> History:
        with self._connect() as conn:
            row = conn.execute(
                select(sessions.c.summary, sessions.c.summary_upto).where(sessions.c.session_id == session_id)
            ).first()
            if row is None:
                return History()
            rows = conn.execute(
                select(messages.c.seq, messages.c.message, messages.c.tokens)
                .where(messages.c.session_id == session_id)
                .order_by(messages.c.seq)
            ).all()
        return History([StoredMessage(m, t, s) for s, m, t in rows], row.summary, row.summary_upto)

    def save_turn(
        self, session_id: str, user_id: str, new: list[StoredMessage], run: FinishedRun, title: str = ""
    ) -> None:
        """The turn's messages, the run's stream and the session row, in one transaction."""
        self.save_turns([Turn(session_id, user_id, new, run, title)])

    def save_turns(self, turns: list[Turn]) -> None:
        """Several turns in one transaction and five statements, however many turns there are."""
        now = time.time()
        if self._pg_turns is not None:  # the hot path of every run
            self._ensure_tables()
            try:
                self._pg_turns.save(turns, now)
            except psycopg.OperationalError as error:
                raise StoreUnavailable(f"{self.where} cannot be reached: {error}") from error
            return
        ids = sorted({t.session_id for t in turns})
        with self._connect(begin=True) as conn:
            counts: dict[str, int] = {
                sid: count
                for sid, count in conn.execute(
                    select(sessions.c.session_id, sessions.c.message_count)
                    .where(sessions.c.session_id.in_(ids))
                    .with_for_update()
                )
            }
            created, message_rows, run_rows = _turn_rows(turns, counts, now)
            if created:
                conn.execute(insert(sessions), created)
            if message_rows:
                conn.execute(insert(messages), message_rows)
            conn.execute(
                update(sessions)
                .where(sessions.c.session_id == bindparam("sid"))
                .values(message_count=bindparam("count"), updated_at=now),
                [{"sid": sid, "count": counts[sid]} for sid in ids],
            )
            conn.execute(insert(runs), run_rows)

    def set_summary(self, session_id: str, summary: str, upto: int) -> None:
        with self._connect(begin=True) as conn:
            conn.execute(
                update(sessions).where(sessions.c.session_id == session_id).values(summary=summary, summary_upto=upto)
            )

    def list_sessions(self, user_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(sessions).order_by(sessions.c.updated_at.desc()).limit(limit)
        if user_id is not None:
            query = query.where(sessions.c.user_id == user_id)
        with self._connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def rename(self, session_id: str, title: str) -> None:
        with self._connect(begin=True) as conn:
            conn.execute(update(sessions).where(sessions.c.session_id == session_id).values(title=session_title(title)))

    def delete(self, session_id: str) -> None:
        """The session, its messages and its runs' streams, in one transaction."""
        with self._connect(begin=True) as conn:
            for table in (runs, messages, sessions):
                conn.execute(table.delete().where(table.c.session_id == session_id))

    def session_owner(self, session_id: str) -> str | None:
        """The user a session belongs to; None when there is no such session."""
        with self._connect() as conn:
            owner = conn.execute(select(sessions.c.user_id).where(sessions.c.session_id == session_id)).scalar()
        return str(owner) if owner is not None else None

    def last_run(self, session_id: str) -> FinishedRun | None:
        with self._connect() as conn:
            row = conn.execute(
                select(runs.c.run_id, runs.c.status, runs.c.events, runs.c.started_at)
                .where(runs.c.session_id == session_id)
                .order_by(runs.c.started_at.desc())
                .limit(1)
            ).first()
        return FinishedRun(row.run_id, row.status, row.events, row.started_at) if row else None

    def close(self) -> None:
        if self._pg_turns is not None:
            self._pg_turns.close()
        self.engine.dispose()


_Rows = list[dict[str, Any]]


def _turn_rows(turns: list[Turn], counts: dict[str, int], now: float) -> tuple[_Rows, _Rows, _Rows]:
    """New sessions, messages and runs of ``turns``; ``counts`` (each session's messages so far) moves on."""
    created: _Rows = []
    message_rows: _Rows = []
    run_rows: _Rows = []
    for turn in turns:
        if turn.session_id not in counts:
            counts[turn.session_id] = 0
            created.append(
                {"session_id": turn.session_id, "user_id": turn.user_id, "title": session_title(turn.title),
                 "summary_upto": 0, "message_count": 0, "created_at": now, "updated_at": now}
            )  # fmt: skip
        first = counts[turn.session_id]
        message_rows += [
            {"session_id": turn.session_id, "seq": first + i, "role": m.message["role"], "message": m.message,
             "tokens": m.tokens, "created_at": now}
            for i, m in enumerate(turn.messages, start=1)
        ]  # fmt: skip
        counts[turn.session_id] = first + len(turn.messages)
        run = turn.run
        run_rows.append(
            {"run_id": run.run_id, "session_id": turn.session_id, "status": run.status, "events": run.events,
             "started_at": run.started_at, "finished_at": now}
        )  # fmt: skip
    return created, message_rows, run_rows
