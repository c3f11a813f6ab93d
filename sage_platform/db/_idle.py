"""Connections a process has finished with, kept open for its next ``Database.connect()``.

A new connection costs about 12 ms here: a server process to start, then pgvector's four type
look-ups on its cold catalog caches. A one-file Dagster run opens some fifty. A connection is reset
when it is given back, so that an idle one holds nothing (settings, temporary tables, session advisory
locks, cursors and listens go; prepared statements stay, and stay valid), and checked with an empty
round trip when it is taken again, which finds one the server has ended.

Usage::

    idle = IdleConnections(url)
    conn = idle.take()          # autocommit, pgvector's types registered
    ...
    idle.give_back(conn)        # kept if it is idle and healthy, else closed
"""

from __future__ import annotations

import os
import threading
import weakref

import psycopg
from pgvector.psycopg import register_vector
from psycopg.pq import TransactionStatus

# DISCARD ALL but its DEALLOCATE ALL: psycopg would not know its prepared statements had gone.
_RESET = "CLOSE ALL; RESET ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
KEEP = 4  # the most a process keeps idle: a run's steps take one at a time, its searches up to four


# A forked child's copies of its parent's kept sessions: never used, and never ended (closing one, or
# letting it be collected, would send the server a goodbye on the socket the parent still uses).
_INHERITED: list[psycopg.Connection] = []


class IdleConnections:
    def __init__(self, url: str, *, keep: int = KEEP) -> None:
        self._url = url
        self._keep = keep
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection] = []
        self._pid = os.getpid()
        # Closed when this object is collected (a Database nobody closed), not left to warn.
        weakref.finalize(self, _close_each, self._idle, os.getpid())

    def take(self) -> psycopg.Connection:
        """A reset kept connection, or a new one; in autocommit mode."""
        while (conn := self._pop()) is not None:
            try:
                conn.execute("")  # an empty round trip, as psycopg_pool checks
                return conn
            except psycopg.Error:  # ended by the server (a restore, a restart) while it was kept
                conn.close()
        conn = psycopg.connect(self._url, autocommit=True)
        register_vector(conn)
        return conn

    def give_back(self, conn: psycopg.Connection) -> None:
        """Keep ``conn`` for the next ``take()`` if it is healthy and outside a transaction; else close it."""
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE and self._reset(conn):
            with self._lock:
                if len(self._idle) < self._keep and self._pid == os.getpid():
                    self._idle.append(conn)
                    return
        conn.close()

    @staticmethod
    def _reset(conn: psycopg.Connection) -> bool:
        """Before it idles: a kept connection holds no lock, listen, cursor or temporary table."""
        try:
            conn.autocommit = True  # the reset runs outside a transaction block
            conn.execute(_RESET)
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()
        _close_each(idle, os.getpid())

    def _pop(self) -> psycopg.Connection | None:
        with self._lock:
            if self._pid != os.getpid():
                _INHERITED.extend(self._idle)
                self._idle.clear()
                self._pid = os.getpid()
            return self._idle.pop() if self._idle else None


def _close_each(connections: list[psycopg.Connection], owner: int) -> None:
    if os.getpid() != owner:  # the finalizer of a copy a forked child inherited
        return
    for conn in connections:
        conn.close()
