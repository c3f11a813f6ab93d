"""The warm worker: loads the graph, Great Expectations and the embedding model once, then runs the
materializations its clients hand it, one at a time, in its main thread.

Usage::

    serve_worker(Settings(), ready=lambda path: print(f"ready on {path}"))  # until SIGINT or SIGTERM

A run is ``materialize_graph`` in this process, recorded in the Dagster instance like any other; its
output (Dagster's log lines at the client's level) goes to the client as it is written. A client that
goes away does not stop the run. SIGINT during a run interrupts it as Dagster does (the step in progress
ends, the run is marked failed) and stops the worker after it; SIGTERM does the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from sage_platform.config import Settings
from sage_platform.runtime import RAG_JOB, materialize_graph, prepare_dagster_home
from sage_platform.worker.protocol import LOG_LEVELS, code_stamp, receive, send, settings_digests, socket_path

REQUEST_TIMEOUT_S = 10.0  # a client that connects and sends nothing must not hold the worker
SEND_TIMEOUT_S = 30.0


class WorkerAlreadyRunning(RuntimeError):
    pass


def warm_up(settings: Settings) -> None:
    """Load what a run would load first: the database, the job, Dagster's instance, Great Expectations,
    the local model."""
    from sage_platform.db import Database
    from sage_platform.definitions import defs
    from sage_platform.embeddings import embedder_from_settings
    from sage_platform.embeddings.local import LocalEmbedder
    from sage_platform.kept_instance import kept_instance
    from sage_platform.quality.gx import load_great_expectations

    Database.from_settings(settings)
    prepare_dagster_home(settings)
    defs.resolve_job_def(RAG_JOB)
    if settings.dagster_executor == "in_process":
        kept_instance().get_runs_count()  # the instance its runs share, connected
    load_great_expectations()
    embedder = embedder_from_settings(settings)
    if isinstance(embedder, LocalEmbedder):  # a remote API is not called for nothing
        embedder.embed(["warm up"])


class _LinesToClient(io.TextIOBase):
    """A text stream whose complete lines go to the client as ``{"log": line}``; silent once it is gone."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection, self.gone, self._partial = connection, False, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._send({"log": line})
        return len(text)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        if self._partial:
            self._send({"log": self._partial})
            self._partial = ""

    def _send(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            send(self.connection, message)
        except OSError:
            self.gone = True  # the run goes on; its record is in the Dagster instance


def _peer_uid(connection: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None  # not Linux: the socket folder's mode alone keeps others out
    _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return int(uid)


def _refusal(message: dict[str, Any], settings: dict[str, str], code: str) -> str | None:
    run = message.get("run")
    if not isinstance(run, dict) or not isinstance(run.get("job"), str):
        return "a run request names a job"
    assets = run.get("assets")
    if assets is not None and not (isinstance(assets, list) and all(isinstance(a, str) for a in assets)):
        return "assets must be a list of asset names"
    if run.get("log_level") not in LOG_LEVELS:
        return f"log_level must be one of {', '.join(LOG_LEVELS)}"
    if message.get("code") != code:
        return "the platform's code changed since it started (restart it: sage up, or sage worker)"
    theirs = message.get("settings")
    if not isinstance(theirs, dict):
        return "a run request carries the settings' digests"
    differing = sorted(name for name in settings.keys() | theirs.keys() if settings.get(name) != theirs.get(name))
    if differing:
        return f"it was started with other settings ({', '.join(differing[:8])})"
    return None


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.digests, self.code = settings_digests(settings), code_stamp()

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(REQUEST_TIMEOUT_S)
        with connection.makefile("rb") as reader:
            try:
                if (uid := _peer_uid(connection)) is not None and uid != os.getuid():
                    return
                send(connection, {"hello": os.getpid()})  # free now: a client sends its request only after this
                message = receive(reader)
                if message is None:
                    return
                if message.get("ping"):
                    send(connection, {"pong": os.getpid()})
                    return
                refusal = _refusal(message, self.digests, self.code)
                if refusal:
                    send(connection, {"refused": refusal})
                    return
                connection.settimeout(SEND_TIMEOUT_S)
                send(connection, {"accepted": os.getpid()})
            except (OSError, ValueError):
                return
            self._run(connection, message["run"])

    def _run(self, connection: socket.socket, run: dict[str, Any]) -> None:
        output = _LinesToClient(connection)
        success, error = False, None
        began = time.monotonic()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                success = materialize_graph(
                    self.settings, log_level=run["log_level"], job_name=run["job"], assets=run["assets"] or None
                )
            except Exception as failed:  # the worker outlives a bad request or a broken run
                error = f"{type(failed).__name__}: {failed}"
            output.finish()
        ended = "succeeded" if success else f"failed{f' ({error})' if error else ''}"
        _say(f"run of {run['job']} {ended} in {time.monotonic() - began:.1f}s")
        with contextlib.suppress(OSError):
            send(connection, {"done": success, "error": error})


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(f"[sage worker] {line}", flush=True)


@contextlib.contextmanager
def _only_worker(path: Path) -> Iterator[None]:
    """Holds ``<socket>.lock`` for the worker's life: a second worker for the same data folder is refused."""
    with open(path.with_suffix(".lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerAlreadyRunning(f"a warm worker already serves this data folder ({path})") from None
        yield


def _sigterm_as_sigint(signum: int, frame: FrameType | None) -> None:
    os.kill(os.getpid(), signal.SIGINT)  # idle: KeyboardInterrupt; in a run: Dagster's interrupt


def _signalled(wakeup: socket.socket) -> bool:
    """Whether SIGINT or SIGTERM came during the last run (Dagster's own handler took it then)."""
    try:
        arrived = wakeup.recv(256)
    except BlockingIOError:
        return False
    return signal.SIGINT in arrived or signal.SIGTERM in arrived


def serve_worker(settings: Settings, *, ready: Callable[[Path], None] | None = None) -> None:
    """Warm up, then serve runs on this data folder's socket until SIGINT or SIGTERM."""
    path = socket_path(settings)
    with _only_worker(path):
        began = time.monotonic()
        worker = Worker(settings)  # stamps the code before loading it: an edit meanwhile makes the stamps differ
        warm_up(settings)
        _say(f"warmed up in {time.monotonic() - began:.1f}s")
        path.unlink(missing_ok=True)  # left by a worker that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wakeup, wakeup_writer = socket.socketpair()
        for end in (wakeup, wakeup_writer):
            end.setblocking(False)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored when started with `&` or nohup
        signal.signal(signal.SIGTERM, _sigterm_as_sigint)
        signal.set_wakeup_fd(wakeup_writer.fileno())  # every signal's number, whoever handles it
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)
            listener.listen(16)
            if ready:
                ready(path)
            while not _signalled(wakeup):
                connection, _ = listener.accept()
                with connection:
                    worker.handle(connection)
            _say("stopping (a signal came during the last run)")
        except KeyboardInterrupt:
            _say("stopping")
        finally:
            signal.set_wakeup_fd(-1)
            for end in (listener, wakeup, wakeup_writer):
                end.close()
            path.unlink(missing_ok=True)
            sys.stdout.flush()
