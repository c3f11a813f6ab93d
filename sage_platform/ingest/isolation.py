"""Parsing in a worker process with limits, so that one hostile file cannot stall or exhaust a run.

The worker (``python -m sage_platform.ingest.isolation``, started on the first file to parse) parses
one file at a time under an address-space limit (``SAGE_PARSER_MEMORY_MB``); the parent gives each file ``SAGE_PARSER_TIMEOUT_S`` and kills and
restarts the worker when a file takes longer or the worker dies. The readers themselves limit PDF pages
and extracted characters. Every failure of a file, whatever its kind, comes back as ``Rejected`` with a
reason, and the run goes on with the next file.

A process keeps one idle worker per set of limits (``kept_parser``): the next run in a long-lived
process (the warm worker, the servers) parses its first changed file without starting Python and the
readers again (0.13 s), nor waits for the old worker to exit (0.07 s).

Usage::

    with kept_parser(ParserLimits.from_settings(settings)) as parser:
        result = parser.parse("guide/intro.md", data)     # ReadResult, or raises Rejected
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import resource
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from sage_platform.ingest.readers import ReaderLimits, ReadResult, Rejected, read_document

if TYPE_CHECKING:  # the worker process imports this module: keep it light
    from sage_platform.config import Settings

STARTUP_TIMEOUT_S = 120.0  # imports on a cold, busy machine
_FRAME = struct.Struct("!Q")  # each message: its length, then a pickle (both ends are this module)


@dataclass(frozen=True)
class ParserLimits:
    timeout_s: float = 30.0
    memory_mb: int = 1024
    reader: ReaderLimits = ReaderLimits()

    @classmethod
    def from_settings(cls, settings: Settings) -> ParserLimits:
        return cls(
            timeout_s=settings.parser_timeout_s,
            memory_mb=settings.parser_memory_mb,
            reader=ReaderLimits(max_pdf_pages=settings.max_pdf_pages, max_chars=settings.max_extracted_chars),
        )


def _write_frame(stream: IO[bytes], value: Any) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError("the other end closed the pipe")
    (size,) = _FRAME.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("the other end closed the pipe mid-message")
    return pickle.loads(payload)


def _answer(rel_path: str, data: bytes, limits: ParserLimits) -> tuple[str, Any]:
    try:
        return ("ok", read_document(rel_path, data, limits.reader))
    except Rejected as error:
        return ("rejected", str(error))
    except MemoryError:
        return ("rejected", f"parsing needs more than SAGE_PARSER_MEMORY_MB ({limits.memory_mb} MB)")
    except RecursionError:
        return ("rejected", "nested too deeply to parse (over about 1,000 levels)")
    except Exception as error:  # any parser bug or odd input: this file is rejected, the run goes on
        return ("rejected", f"parser error: {type(error).__name__}: {error}"[:500])


def _serve(limits: ParserLimits) -> None:
    """The worker's loop: (path, bytes) frames in on stdin, ("ok", ReadResult) or ("rejected", why) out."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print from a parser must not corrupt the replies
    requests = sys.stdin.buffer
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    _write_frame(replies, "ready")  # imports done: from here on the parent times each file alone
    while True:
        try:
            message = _read_frame(requests)
        except EOFError:
            return
        rel_path, data = message
        reply = _answer(rel_path, data, limits)
        del data, message
        _write_frame(replies, reply)


class ParserProcess:
    """A parser worker process; restarted after a timeout or a crash."""

    def __init__(self, limits: ParserLimits | None = None) -> None:
        self.limits = limits or ParserLimits()
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._stop()
            arguments = json.dumps({**asdict(self.limits), "reader": asdict(self.limits.reader)})
            process = subprocess.Popen(
                [sys.executable, "-m", "sage_platform.ingest.isolation", arguments],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
            if not ready or _read_frame(process.stdout) != "ready":
                process.kill()
                process.wait()
                raise RuntimeError(f"the parser worker did not start within {STARTUP_TIMEOUT_S:g} s")
            self._process = process
        return self._process

    def parse(self, rel_path: str, data: bytes) -> ReadResult:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            _write_frame(process.stdin, (rel_path, data))
            ready, _, _ = select.select([process.stdout], [], [], self.limits.timeout_s)
            if not ready:
                self._restart()
                raise Rejected(f"parsing took longer than SAGE_PARSER_TIMEOUT_S ({self.limits.timeout_s:g} s)")
            kind, payload = _read_frame(process.stdout)
        except (EOFError, OSError):
            code = process.wait(10)
            self._restart()
            raise Rejected(
                f"the parser process died (exit {code}): over SAGE_PARSER_MEMORY_MB ({self.limits.memory_mb} MB)?"
            ) from None
        if kind == "ok":
            result: ReadResult = payload
            return result
        raise Rejected(str(payload))

    def _restart(self) -> None:
        self.restarts += 1
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # a worker between files exits on end of input
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # busy with a file that takes too long
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        """Started and not exited (a worker not started yet is not worth keeping either)."""
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> ParserProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


_IDLE: dict[ParserLimits, ParserProcess] = {}
_IDLE_LOCK = threading.Lock()
_IDLE_PID = os.getpid()


@contextlib.contextmanager
def kept_parser(limits: ParserLimits | None = None) -> Iterator[ParserProcess]:
    """This process's idle worker for ``limits``, or a new one; kept again afterwards unless the block
    raised (a worker in an unknown state is closed) or another is already kept."""
    global _IDLE_PID
    limits = limits or ParserLimits()
    with _IDLE_LOCK:
        if os.getpid() != _IDLE_PID:  # a forked child: its parent's workers are not its children
            _IDLE.clear()
            _IDLE_PID = os.getpid()
        parser = _IDLE.pop(limits, None) or ParserProcess(limits)
    try:
        yield parser
    except BaseException:
        parser.close()
        raise
    with _IDLE_LOCK:
        if parser.alive and limits not in _IDLE:
            _IDLE[limits] = parser
            return
    parser.close()


@atexit.register
def _close_kept_parsers() -> None:
    with _IDLE_LOCK:
        parsers = list(_IDLE.values()) if os.getpid() == _IDLE_PID else []
        _IDLE.clear()
    for parser in parsers:
        parser.close()


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    _serve(ParserLimits(given["timeout_s"], given["memory_mb"], ReaderLimits(**given["reader"])))
