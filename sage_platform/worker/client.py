"""Hand a run to the warm worker serving this data folder, if one runs with the same settings and code.

Usage::

    ran = run_in_worker(settings, job_name="rag_job", assets=None, log_level="INFO")
    if ran is None:  # no worker, or one that would run something else: run it here
        ran = materialize_graph(settings, ...)
"""

from __future__ import annotations

import socket
import sys
from typing import BinaryIO, TextIO

from sage_platform.config import Settings
from sage_platform.worker.protocol import (
    UnsafeSocketFolder,
    code_stamp,
    receive,
    send,
    settings_digests,
    socket_path,
)

GREETING_TIMEOUT_S = 5.0  # how long a busy worker is waited for before the run goes elsewhere


def _connect(settings: Settings, out: TextIO | None) -> tuple[socket.socket, BinaryIO] | None:
    """A connection the worker has greeted (it is free to take a request), or None."""
    try:
        path = socket_path(settings)
    except UnsafeSocketFolder as unsafe:
        if out:
            print(f"[sage] not using a warm worker: {unsafe}", file=out)
        return None
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(GREETING_TIMEOUT_S)
    reader = connection.makefile("rb")
    try:
        connection.connect(str(path))
        greeting = receive(reader)
    except TimeoutError:
        greeting = None
        if out:
            print("[sage] the warm worker is busy with another run; running here", file=out)
    except (OSError, ValueError):  # a socket left by a worker that died, or not a worker
        greeting = None
    if greeting is None or "hello" not in greeting:
        reader.close()
        connection.close()
        return None
    return connection, reader


def ping(settings: Settings) -> int | None:
    """The worker's pid if one answers for this data folder (and is not busy)."""
    connected = _connect(settings, None)
    if connected is None:
        return None
    connection, reader = connected
    with connection, reader:
        try:
            send(connection, {"ping": True})
            answer = receive(reader)
        except (OSError, ValueError):
            return None
    return int(answer["pong"]) if answer and "pong" in answer else None


def run_in_worker(
    settings: Settings, *, job_name: str, assets: list[str] | None, log_level: str, out: TextIO | None = None
) -> bool | None:
    """The run's success, or None when no worker took it (none runs, or it would run other settings or code).

    The worker's log lines are printed to ``out`` as they come. A worker that dies mid-run counts as a
    failed run: it is not re-run here behind the user's back (a re-run picks up where it stopped).
    """
    out = out or sys.stderr  # looked up now: the caller may have redirected it
    connected = _connect(settings, out)
    if connected is None:
        return None
    connection, reader = connected
    request = {"run": {"job": job_name, "assets": assets, "log_level": log_level},
               "settings": settings_digests(settings), "code": code_stamp()}  # fmt: skip
    with connection, reader:
        try:
            send(connection, request)
            answer = receive(reader)
        except (OSError, ValueError):
            return None
        if answer is None or "refused" in answer:
            reason = answer["refused"] if answer else "it closed the connection"
            print(f"[sage] not using the warm worker: {reason}; running here", file=out)
            return None
        print(f"[sage] running in the warm worker (pid {answer.get('accepted')})", file=out, flush=True)
        connection.settimeout(None)  # a run takes as long as it takes
        try:
            while (message := receive(reader)) is not None:
                if "log" in message:
                    print(message["log"], file=out, flush=True)
                elif "done" in message:
                    if message.get("error"):
                        print(f"[sage] the run failed in the warm worker: {message['error']}", file=out)
                    return bool(message["done"])
        except (OSError, ValueError) as lost:
            print(f"[sage] lost the warm worker mid-run: {lost}", file=out)
            return False
    print("[sage] the warm worker stopped before the run ended; see its log", file=out)
    return False
