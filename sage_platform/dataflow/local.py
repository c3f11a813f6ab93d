"""``LocalEnvironment``: the pipeline on threads, one or more per step, joined by bounded queues.

- a full queue blocks the step before it (backpressure), so a slow sink bounds the records in flight;
- a step with ``batch_size`` > 1 gets up to that many records per call, waiting at most ``batch_wait``;
- ``parallelism`` runs that many workers of a step, each with its own function instance;
- after ``keyby``, records with one key always reach the same worker.

Usage::

    env = LocalEnvironment("rag", {"queue_size": 64})
    env.from_source(FileSource, {"file_path": "questions.txt"}).map(DenseRetriever).sink(TerminalSink)
    result = env.submit()                    # blocks; per-operator counters
    run = env.submit(autostop=False)         # streaming: runs until run.stop()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal, overload

from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.functions import PENDING
from sage_platform.dataflow.pipeline import KeyFunction, Pipeline, Stage
from sage_platform.dataflow.result import PipelineResult, merged
from sage_platform.dataflow.runner import OperatorStats, SkippedRecord, StageRunner, WindowBuffer

_END = object()
DEFAULT_QUEUE_SIZE = 64
POLL_SECONDS = 0.1


class _Channel:
    """The bounded queue(s) into one step: one shared, or one per worker when the step is keyed."""

    def __init__(self, workers: int, key: KeyFunction | None, size: int, abort: threading.Event) -> None:
        self.key = key if workers > 1 else None
        count = workers if self.key else 1
        self.queues: list[queue.Queue[Any]] = [queue.Queue(max(1, size // count)) for _ in range(count)]
        self.workers = workers
        self.abort = abort

    def put(self, record: Any) -> bool:
        target = self.queues[hash(self.key(record)) % len(self.queues)] if self.key else self.queues[0]
        return self._put(target, record)

    def _put(self, target: queue.Queue[Any], item: Any) -> bool:
        while not self.abort.is_set():
            try:
                target.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def end(self) -> None:
        for worker in range(self.workers):
            self._put(self.queues[worker % len(self.queues)], _END)

    def take(self, worker: int, size: int, wait: float) -> tuple[list[Any], bool]:
        """Up to ``size`` records (blocking for the first), and whether the stream ended."""
        source = self.queues[worker % len(self.queues)]
        first = self._get(source, None)
        if first is _END:
            return [], True
        batch = [first]
        deadline = time.monotonic() + wait
        while len(batch) < size:
            item = self._get(source, deadline)
            if item is None:
                break
            if item is _END:
                return batch, True
            batch.append(item)
        return batch, False

    def _get(self, source: queue.Queue[Any], deadline: float | None) -> Any:
        while True:
            if self.abort.is_set():
                return _END
            timeout = POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
            if deadline is not None and timeout <= 0:
                try:
                    return source.get_nowait()
                except queue.Empty:
                    return None
            try:
                return source.get(timeout=timeout)
            except queue.Empty:
                continue

    def get_until(self, deadline: float | None) -> Any:
        """One record, ``_END``, or None when the deadline passed first (windows)."""
        return self._get(self.queues[0], deadline) if deadline is not None else self._get(self.queues[0], None)


class PipelineRun:
    """One run of a pipeline on threads. ``wait()`` or ``stop()`` returns its ``PipelineResult``."""

    def __init__(self, pipeline: Pipeline, config: Mapping[str, Any], *, autostop: bool) -> None:
        self.pipeline = pipeline
        self.autostop = autostop
        self.queue_size = int(config.get("queue_size", DEFAULT_QUEUE_SIZE))
        self.stopping = threading.Event()
        self.abort = threading.Event()
        self.failure: BaseException | None = None
        self.outputs: list[Any] = []
        self._parts: list[OperatorStats] = []
        self._skipped: list[SkippedRecord] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        stages = pipeline.stages
        self._channels = [_Channel(s.parallelism, s.key, self.queue_size, self.abort) for s in stages[1:]]
        self._remaining = [s.parallelism for s in stages]
        self._began = 0.0

    def start(self) -> PipelineRun:
        self._began = time.perf_counter()
        stages = self.pipeline.stages
        self._spawn(f"{stages[0].name}", self._source, stages[0])
        for index, stage in enumerate(stages[1:], start=1):
            if stage.kind == "window":
                self._spawn(stage.name, self._window, index, stage)
            else:
                for worker in range(stage.parallelism):
                    self._spawn(f"{stage.name}-{worker}", self._worker, index, stage, worker)
        return self

    def stop(self, timeout: float | None = None) -> PipelineResult:
        """Stop the sources; what is already in flight finishes; returns the counters."""
        self.stopping.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> PipelineResult:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:  # Ctrl-C stops the sources and lets the rest drain
            self.stopping.set()
            for thread in self._threads:
                thread.join()
        if any(t.is_alive() for t in self._threads):
            raise TimeoutError(f"pipeline {self.pipeline.name!r} still running after {timeout} s")
        if self.failure is not None:
            raise self.failure
        return PipelineResult(self.pipeline.name, "local", merged(self.pipeline.stages, self._parts), self.outputs,
                              self._skipped, time.perf_counter() - self._began, self.stopping.is_set())  # fmt: skip

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=self._guarded, args=(target, *args), name=f"dataflow:{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guarded(self, target: Any, *args: Any) -> None:
        try:
            target(*args)
        except BaseException as error:  # any failure ends the run; the first one is raised by wait()
            with self._lock:
                if self.failure is None:
                    self.failure = error
            self.abort.set()

    def _emit(self, index: int, records: list[Any]) -> None:
        if index + 1 < len(self.pipeline.stages):
            channel = self._channels[index]
            for record in records:
                if not channel.put(record):
                    return
        else:
            self.outputs.extend(records)

    def _finish(self, index: int, runner_stats: OperatorStats, skipped: list[SkippedRecord]) -> None:
        with self._lock:
            self._parts.append(runner_stats)
            self._skipped.extend(skipped)
            self._remaining[index] -= 1
            last = self._remaining[index] == 0
        if last and index + 1 < len(self.pipeline.stages):
            self._channels[index].end()

    def _source(self, stage: Stage) -> None:
        runner = StageRunner(stage)
        failed = True
        try:
            runner.open()
            bounded = stage.kind == "batch"
            while not self.stopping.is_set() and not self.abort.is_set():
                record = runner.next_record()
                if record is PENDING or (record is None and not bounded and not self.autostop):
                    self.stopping.wait(POLL_SECONDS)
                    continue
                if record is None:
                    break
                self._emit(0, [record])
            failed = False
        finally:
            self._close(0, runner, failed)

    def _worker(self, index: int, stage: Stage, worker: int) -> None:
        runner = StageRunner(stage)
        channel = self._channels[index - 1]
        failed = True
        try:
            runner.open()
            while True:
                batch, ended = channel.take(worker, stage.batch_size, stage.batch_wait)
                if batch:
                    self._emit(index, runner.process(batch))
                if ended:
                    break
            failed = False
        finally:
            self._close(index, runner, failed)

    def _close(self, index: int, runner: StageRunner, failed: bool) -> None:
        try:
            runner.close(failed=failed or self.abort.is_set())
        finally:
            self._finish(index, runner.stats, runner.skipped)

    def _window(self, index: int, stage: Stage) -> None:
        buffer = WindowBuffer(stage)
        channel = self._channels[index - 1]
        try:
            while True:
                item = channel.get_until(buffer.next_deadline())
                now = time.monotonic()
                if item is _END:
                    self._emit(index, buffer.flush())
                    break
                if item is not None:
                    self._emit(index, buffer.add(item, now))
                self._emit(index, buffer.due(now))
        finally:
            self._finish(index, buffer.stats, [])


class LocalEnvironment(BaseEnvironment):
    """Runs on this machine with threads. Config: ``queue_size`` (records per queue, default 64)."""

    environment = "local"

    def __init__(self, name: str = "pipeline", config: Mapping[str, Any] | None = None, *,
                 pipeline: Pipeline | None = None) -> None:  # fmt: skip
        super().__init__(name, config, pipeline=pipeline)
        self._run: PipelineRun | None = None

    @overload
    def submit(self, autostop: Literal[True] = ...) -> PipelineResult: ...
    @overload
    def submit(self, autostop: Literal[False]) -> PipelineRun: ...
    @overload
    def submit(self, autostop: bool) -> PipelineResult | PipelineRun: ...

    def submit(self, autostop: bool = True) -> PipelineResult | PipelineRun:
        """Runs the pipeline. Blocks until the sources are exhausted and returns the counters; with
        ``autostop=False`` returns the running ``PipelineRun`` at once (stop it with ``env.stop()``)."""
        self._check_runnable()
        run = PipelineRun(self.pipeline, self.config, autostop=autostop).start()
        self._run = run
        return run.wait() if autostop else run

    def stop(self, timeout: float | None = None) -> PipelineResult:
        if self._run is None:
            raise RuntimeError(f"pipeline {self.name!r} is not running")
        return self._run.stop(timeout)

    close = stop  # the original framework's name
