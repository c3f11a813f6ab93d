"""Child processes in tests: every wait ends as soon as the child exits, and says what it printed last.

Usage::

    with Child([sys.executable, "-m", "sage_platform.cli", "serve"], env=env) as child:
        child.wait_for_line(lambda line: "Uvicorn running" in line, timeout=120)
        child.wait_for(ready.is_set, timeout=60, what="the stub to be called")

A child that is slow but alive keeps its whole timeout; a child that dies fails the wait at once, with
its exit code and last lines in the message, instead of the test sitting out the timeout.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

_EXITED = object()
_POLL_S = 0.05  # how often a condition on another process's side effects is re-checked


class ChildExited(AssertionError):
    """The child exited before the awaited line or condition."""


class Child:
    """A child process in its own session, its stdout and stderr read line by line as they arrive."""

    def __init__(self, command: Sequence[str], *, name: str | None = None, keep_lines: int = 200, **popen: Any):
        self.name = name or " ".join(command[:4])
        self.output: deque[str] = deque(maxlen=keep_lines)
        self._lines: queue.Queue[object] = queue.Queue()
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **popen
        )
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)

    def _watch(self) -> None:
        self.process.wait()
        self._lines.put(_EXITED)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 60) -> str:
        return "".join(list(self.output)[-lines:])

    def text(self) -> str:
        return "".join(self.output)

    def _exited(self, waiting_for: str) -> ChildExited:
        return ChildExited(
            f"{self.name} exited with code {self.process.returncode} while waiting for {waiting_for}; "
            f"its last lines:\n{self.tail()}"
        )

    def wait_for_line(self, matches: Callable[[str], bool], *, timeout: float, what: str = "a line") -> str:
        """The first line from now on that ``matches``; fails at once if the child exits first."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name} printed no {what} within {timeout:.0f} s; last lines:\n{self.tail()}")
            try:
                item = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is _EXITED:
                self._lines.put(_EXITED)  # later waits see the exit too
                raise self._exited(what)
            assert isinstance(item, str)
            if matches(item):
                return item

    def wait_for(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Until ``condition()`` holds (something the child does elsewhere); fails at once if it exits."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise self._exited(what)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} within {timeout:.0f} s from {self.name}; last lines:\n{self.tail()}")
            time.sleep(_POLL_S)  # the condition lives in another process: no event to block on

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill_group(self) -> None:
        """SIGKILL the child's whole session (its own children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.process.poll() is None:
            self.kill_group()
        # The pump reads to the end of the output, then the pipe is closed (unless a grandchild holds it).
        self._pump_thread.join(timeout=2)
        if not self._pump_thread.is_alive() and self.process.stdout is not None:
            self.process.stdout.close()
