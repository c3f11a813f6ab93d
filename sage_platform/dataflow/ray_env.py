"""``RemoteEnvironment``: the pipeline on Ray (``pip install sage-platform[ray]``).

Each step becomes a pool of Ray actors (``parallelism`` of them, each with its own function instance);
the driver reads the source, sends micro-batches to free actors and passes results on. Records waiting
for a step are bounded by ``queue_size`` per step (backpressure): a step is only fed while the queue
after it has room. Windows and the source run in the driver; keyed steps send a key to one actor.

Config: ``address`` (default ``RAY_ADDRESS``; unset starts a local cluster), ``num_cpus`` (local
cluster only), ``queue_size`` (default 64), ``actor_num_cpus`` (CPUs reserved per actor, default 0),
``runtime_env`` (Ray's, for a real cluster: code and packages the workers need).

Usage::

    env = RemoteEnvironment("rag_pipeline", {"num_cpus": 2})      # or RAY_ADDRESS=ray://head:10001
    env.from_source(FileSource, {"file_path": "questions.txt"}).map(DenseRetriever, parallelism=2)...
    result = env.submit()
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.functions import PENDING
from sage_platform.dataflow.pipeline import Pipeline, Stage
from sage_platform.dataflow.result import PipelineResult, merged
from sage_platform.dataflow.runner import OperatorError, OperatorStats, SkippedRecord, StageRunner, WindowBuffer

DEFAULT_QUEUE_SIZE = 64
WAIT_SECONDS = 0.1


class _StageActor:
    """One worker of one step, living in a Ray actor process."""

    def __init__(self, stage: Stage) -> None:
        self.runner = StageRunner(stage)
        self.runner.open()

    def process(self, records: list[Any]) -> list[Any]:
        return self.runner.process(records)

    def close(self, failed: bool) -> tuple[OperatorStats, list[SkippedRecord]]:
        return self.runner.close(failed=failed)


def ensure_ray(config: Mapping[str, Any]) -> Any:
    import ray

    if not ray.is_initialized():
        address = config.get("address") or os.environ.get("RAY_ADDRESS")
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": "warning"}
        if address:
            options["address"] = address
            options["runtime_env"] = config.get("runtime_env")
        else:  # a local cluster: workers import what this process can (its sys.path)
            options["num_cpus"] = config.get("num_cpus")
            paths = [p for p in sys.path if p and os.path.isdir(p)]
            options["runtime_env"] = config.get("runtime_env") or {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
        ray.init(**options)
    return ray


class _Step:
    """The driver's view of one step: its actors, the records waiting for them, and calls in flight."""

    def __init__(self, ray: Any, stage: Stage, actor_cpus: float) -> None:
        self.stage = stage
        self.window = WindowBuffer(stage) if stage.kind == "window" else None
        keyed = stage.key is not None and stage.parallelism > 1 and self.window is None
        self.waiting: list[deque[Any]] = [deque() for _ in range(stage.parallelism if keyed else 1)]
        self.keyed = keyed
        remote = ray.remote(num_cpus=actor_cpus)(_StageActor)
        self.actors = [] if self.window else [remote.remote(stage) for _ in range(stage.parallelism)]
        self.free = list(range(len(self.actors)))
        self.in_flight = 0
        self.since: float | None = None  # when the oldest waiting record arrived

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self.waiting)

    def add(self, records: list[Any]) -> None:
        if records and self.since is None:
            self.since = time.monotonic()
        for record in records:
            target = hash(self.stage.key(record)) % len(self.waiting) if self.keyed and self.stage.key else 0
            self.waiting[target].append(record)


class _RayRun:
    def __init__(self, pipeline: Pipeline, config: Mapping[str, Any], *, autostop: bool) -> None:
        self.ray = ensure_ray(config)
        self.pipeline = pipeline
        self.autostop = autostop
        self.queue_size = int(config.get("queue_size", DEFAULT_QUEUE_SIZE))
        actor_cpus = float(config.get("actor_num_cpus", 0))
        self.source = StageRunner(pipeline.stages[0])
        self.steps = [_Step(self.ray, stage, actor_cpus) for stage in pipeline.stages[1:]]
        self.outputs: list[Any] = []
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: PipelineResult | None = None
        self._failure: BaseException | None = None

    def run(self) -> PipelineResult:
        began = time.perf_counter()
        failed = True
        try:
            self.source.open()
            self._drive()
            failed = False
        finally:
            parts, skipped = self._close(failed)
        return PipelineResult(self.pipeline.name, "ray", merged(self.pipeline.stages, parts), self.outputs, skipped,
                              time.perf_counter() - began, self.stopping.is_set())  # fmt: skip

    def _drive(self) -> None:
        pending: dict[Any, tuple[int, int, list[Any]]] = {}  # call → (step, actor, its records)
        source_done = False
        bounded = self.pipeline.stages[0].kind == "batch"
        while True:
            while not source_done and self.steps[0].queued < self.queue_size:
                if self.stopping.is_set():
                    source_done = True
                    break
                record = self.source.next_record()
                if record is PENDING or (record is None and not bounded and not self.autostop):
                    self.stopping.wait(WAIT_SECONDS)
                    break
                if record is None:
                    source_done = True
                else:
                    self.steps[0].add([record])
            upstream_done = source_done
            for index, step in enumerate(self.steps):
                self._dispatch(index, step, upstream_done, pending)
                upstream_done = upstream_done and step.queued == 0 and step.in_flight == 0
            if upstream_done and not pending:
                return
            if not pending:
                continue
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            for call in ready:
                index, actor, records = pending.pop(call)
                step = self.steps[index]
                step.in_flight -= 1
                step.free.append(actor)
                try:
                    outputs = self.ray.get(call)
                except Exception as error:  # the actor's OperatorError, wrapped by Ray
                    cause = getattr(error, "cause", None) or error
                    if isinstance(cause, OperatorError):
                        raise OperatorError(cause.operator, cause.record, cause.__cause__ or cause) from cause
                    raise OperatorError(step.stage.name, records[0], cause) from error
                self._pass_on(index, outputs)

    def _dispatch(self, index: int, step: _Step, upstream_done: bool, pending: dict[Any, Any]) -> None:
        room = index + 1 >= len(self.steps) or self.steps[index + 1].queued < self.queue_size
        if step.window is not None:
            now = time.monotonic()
            while step.waiting[0] and room:
                self._pass_on(index, step.window.add(step.waiting[0].popleft(), now))
            self._pass_on(index, step.window.due(now))
            if upstream_done and not step.waiting[0]:
                self._pass_on(index, step.window.flush())
            return
        size = step.stage.batch_size
        # A partial batch goes when the stream before it has ended or its first record waited batch_wait.
        stale = step.since is not None and time.monotonic() - step.since >= step.stage.batch_wait
        for actor in list(step.free):
            queue = step.waiting[actor % len(step.waiting)]
            if not room or not queue or (len(queue) < size and not upstream_done and not stale):
                continue
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            step.free.remove(actor)
            pending[step.actors[actor].process.remote(batch)] = (index, actor, batch)
            step.in_flight += 1
            room = index + 1 >= len(self.steps) or self.steps[index + 1].queued < self.queue_size
        if step.queued == 0:
            step.since = None

    def _pass_on(self, index: int, records: list[Any]) -> None:
        if index + 1 < len(self.steps):
            self.steps[index + 1].add(records)
        else:
            self.outputs.extend(records)

    def _close(self, failed: bool) -> tuple[list[OperatorStats], list[SkippedRecord]]:
        source_stats, skipped = self.source.close(failed=failed)
        parts = [source_stats]
        for step in self.steps:
            if step.window is not None:
                parts.append(step.window.stats)
                continue
            for actor in step.actors:
                try:
                    stats, actor_skipped = self.ray.get(actor.close.remote(failed))
                    parts.append(stats)
                    skipped.extend(actor_skipped)
                except Exception:  # an actor that died has no counters to give; the run's error says why
                    if not failed:
                        raise
                finally:
                    self.ray.kill(actor)
        return parts, skipped

    # Streaming: run in a thread until stop()
    def start(self) -> _RayRun:
        def target() -> None:
            try:
                self._result = self.run()
            except BaseException as error:
                self._failure = error

        self._thread = threading.Thread(target=target, name=f"dataflow-ray:{self.pipeline.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> PipelineResult:
        self.stopping.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> PipelineResult:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"pipeline {self.pipeline.name!r} still running after {timeout} s")
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result


class RemoteEnvironment(BaseEnvironment):
    """Runs on a Ray cluster: a local one by default, ``RAY_ADDRESS`` (or config ``address``) for a real one."""

    environment = "ray"

    def __init__(self, name: str = "pipeline", config: Mapping[str, Any] | None = None, *,
                 pipeline: Pipeline | None = None) -> None:  # fmt: skip
        super().__init__(name, config, pipeline=pipeline)
        self._run: _RayRun | None = None

    def submit(self, autostop: bool = True) -> Any:
        """Blocks and returns the ``PipelineResult``; with ``autostop=False`` returns a handle whose
        ``stop()`` ends the sources and returns the result."""
        self._check_runnable()
        run = _RayRun(self.pipeline, self.config, autostop=autostop)
        self._run = run
        if autostop:
            try:
                return run.run()
            except KeyboardInterrupt:
                run.stopping.set()
                raise
        return run.start()

    def stop(self, timeout: float | None = None) -> PipelineResult:
        if self._run is None:
            raise RuntimeError(f"pipeline {self.name!r} is not running")
        return self._run.stop(timeout)

    close = stop
