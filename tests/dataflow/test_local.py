"""LocalEnvironment: counters, micro-batches, parallel workers, keys, windows, error policies,
streaming until stopped, and backpressure."""

from __future__ import annotations

import queue
import threading
import tracemalloc
from typing import Any

import pytest

from sage_platform.dataflow import (
    LocalEnvironment,
    MapFunction,
    OperatorError,
    SinkFunction,
    SourceFunction,
    StreamSource,
)


class Sizes(MapFunction):
    batch_size = 8
    seen: list[int] = []

    def execute_batch(self, records: list[Any]) -> list[Any]:
        Sizes.seen.append(len(records))
        return [r * 2 for r in records]


def test_submit_returns_counters_per_operator() -> None:
    env = LocalEnvironment("counts")
    env.from_batch(range(100)).map(lambda n: n + 1).filter(lambda n: n % 2 == 0)
    result = env.submit()
    assert [(s.name, s.kind, s.records_in, s.records_out, s.errors) for s in result.operators] == [
        ("IterableSource", "batch", 0, 100, 0), ("<lambda>", "map", 100, 100, 0), ("<lambda>#2", "filter", 100, 50, 0)]  # fmt: skip
    mapped = result["<lambda>"]
    assert mapped.calls == 100 and mapped.p50_ms is not None and mapped.p99_ms is not None
    assert mapped.p50_ms <= mapped.p99_ms
    assert "<lambda>#2" in result.table() and "p99_ms" in result.table()


def test_a_batching_operator_gets_micro_batches() -> None:
    Sizes.seen = []
    env = LocalEnvironment("batches")
    env.from_batch(range(100)).map(Sizes)
    result = env.submit()
    assert sorted(result.outputs) == [n * 2 for n in range(100)]
    assert sum(Sizes.seen) == 100 and max(Sizes.seen) == 8
    assert len(Sizes.seen) < 50  # batches, not one record per call
    assert result["Sizes"].calls == len(Sizes.seen)


class BatchOnly(MapFunction):
    def execute_batch(self, records: list[Any]) -> list[Any]:
        return [f"batch of {len(records)}: {r}" for r in records]


class Neither(MapFunction):
    pass


def test_a_function_written_for_batches_also_runs_one_record_at_a_time() -> None:
    assert BatchOnly().execute(7) == "batch of 1: 7"
    env = LocalEnvironment("batch-only")
    env.from_batch(range(3)).map(BatchOnly)
    assert sorted(env.submit().outputs) == ["batch of 1: 0", "batch of 1: 1", "batch of 1: 2"]
    with pytest.raises(NotImplementedError, match=r"Neither\.execute\(self, data\) is not implemented"):
        Neither().execute(1)


def test_parallel_workers_run_at_once() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only if three workers wait on it together

    def meet(n: int) -> str:
        barrier.wait()
        return threading.current_thread().name

    env = LocalEnvironment("parallel", {"queue_size": 3})
    env.from_batch(range(3)).map(meet, parallelism=3)
    assert sorted(env.submit().outputs) == ["dataflow:meet-0", "dataflow:meet-1", "dataflow:meet-2"]


def test_keyby_sends_one_key_to_one_worker() -> None:
    def worker(record: dict[str, Any]) -> tuple[int, str]:
        return record["k"], threading.current_thread().name

    env = LocalEnvironment("keys")
    env.from_batch([{"k": n % 5, "n": n} for n in range(200)]).keyby("k").map(worker, parallelism=3)
    workers: dict[int, set[str]] = {}
    for key, name in env.submit().outputs:
        workers.setdefault(key, set()).add(name)
    assert sorted(workers) == [0, 1, 2, 3, 4]
    assert all(len(names) == 1 for names in workers.values())


def test_count_windows_per_key() -> None:
    env = LocalEnvironment("windows")
    env.from_batch([{"k": n % 2, "n": n} for n in range(7)]).keyby("k").batch(size=2)
    windows = [(w["key"], [r["n"] for r in w["records"]]) for w in env.submit().outputs]
    assert sorted(windows) == [(0, [0, 2]), (0, [4, 6]), (1, [1, 3]), (1, [5])]


def test_time_windows_close_on_a_running_stream() -> None:
    inbox: queue.Queue[Any] = queue.Queue()
    closed: queue.Queue[Any] = queue.Queue()
    env = LocalEnvironment("timed")
    env.from_source(StreamSource, {"queue": inbox}).batch(seconds=0.2).sink(lambda w: closed.put(w))
    run = env.submit(autostop=False)
    for n in range(3):
        inbox.put({"n": n})
    window = closed.get(timeout=10)  # closed by time: nothing else ends it while the stream runs
    assert [r["n"] for r in window["records"]] == [0, 1, 2]
    assert run.running
    result = run.stop(timeout=10)
    assert result.stopped and result["Window"].records_out == 1


class Flaky(MapFunction):
    """Fails the first ``failures`` calls for each record, then doubles it."""

    def open(self) -> None:
        self.attempts: dict[int, int] = {}

    def execute(self, data: Any) -> Any:
        self.attempts[data] = self.attempts.get(data, 0) + 1
        if self.attempts[data] <= self.config["failures"]:
            raise ConnectionError(f"attempt {self.attempts[data]} for {data}")
        return data * 2


def test_retry_n_times() -> None:
    env = LocalEnvironment("retry")
    env.from_batch(range(5)).map(Flaky, {"failures": 2}, on_error="retry", retries=2)
    result = env.submit()
    assert sorted(result.outputs) == [0, 2, 4, 6, 8]
    assert (result["Flaky"].errors, result["Flaky"].retries) == (10, 10)


def test_retries_exhausted_fail_the_run_naming_operator_and_record() -> None:
    env = LocalEnvironment("retry")
    env.from_batch(range(5)).map(Flaky, {"failures": 3}, on_error="retry", retries=2)
    with pytest.raises(OperatorError, match=r"Flaky failed on 0: ConnectionError: attempt 3 for 0"):
        env.submit()


def test_fail_stops_the_run() -> None:
    def bad(n: int) -> int:
        if n == 7:
            raise ValueError("seven")
        return n

    env = LocalEnvironment("fail")
    env.from_batch(range(100_000)).map(bad)
    with pytest.raises(OperatorError, match="bad failed on 7: ValueError: seven") as caught:
        env.submit()
    assert caught.value.operator == "bad" and caught.value.record == 7


class BatchWithBadRecord(MapFunction):
    batch_size = 4

    def execute(self, data: Any) -> Any:
        if data == 5:
            raise ValueError("five is bad")
        return data


def test_skip_isolates_the_bad_record_of_a_batch() -> None:
    env = LocalEnvironment("skip")
    env.from_batch(range(10)).map(BatchWithBadRecord, on_error="skip")
    result = env.submit()
    assert sorted(result.outputs) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert [(s.operator, s.record, s.error) for s in result.skipped] == [
        ("BatchWithBadRecord", 5, "ValueError: five is bad")]  # fmt: skip
    assert result["BatchWithBadRecord"].skipped == 1


def test_a_streaming_source_runs_until_stopped() -> None:
    inbox: queue.Queue[Any] = queue.Queue()
    seen: queue.Queue[Any] = queue.Queue()
    env = LocalEnvironment("stream")
    env.from_source(StreamSource, {"queue": inbox}).map(lambda r: r * 10).sink(lambda r: seen.put(r))
    run = env.submit(autostop=False)
    for n in range(3):
        inbox.put(n)
    assert [seen.get(timeout=10) for _ in range(3)] == [0, 10, 20]
    inbox.put(3)
    assert seen.get(timeout=10) == 30
    result = env.stop(timeout=10)
    assert result.stopped and result["<lambda>"].records_in == 4 and not run.running


def test_a_closed_stream_ends_with_autostop() -> None:
    inbox: queue.Queue[Any] = queue.Queue()
    for n in range(4):
        inbox.put(n)
    inbox.put(StreamSource.CLOSE)
    env = LocalEnvironment("closed")
    env.from_source(StreamSource, {"queue": inbox}).map(lambda r: r)
    assert env.submit().outputs == [0, 1, 2, 3]


PAYLOAD = 20_000  # bytes per record


class FastSource(SourceFunction):
    """Counts what it made; the sink counts what it consumed; the gap is what is in flight."""

    def open(self) -> None:
        self.made = 0

    def execute(self, data: Any = None) -> Any:
        if self.made == self.config["records"]:
            return None
        self.made += 1
        state = self.config["state"]
        state["max_in_flight"] = max(state["max_in_flight"], self.made - state["consumed"])
        return {"n": self.made, "payload": "x" * PAYLOAD}


class SlowSink(SinkFunction):
    def execute(self, data: Any) -> None:
        state = self.config["state"]
        sum(range(5_000))  # slower than the source by far: work, not a sleep
        state["consumed"] += 1


def test_a_slow_sink_bounds_the_memory_of_a_fast_source() -> None:
    records, queue_size = 800, 8
    state = {"consumed": 0, "max_in_flight": 0}
    env = LocalEnvironment("backpressure", {"queue_size": queue_size})
    env.from_source(FastSource, {"records": records, "state": state}).map(lambda r: r).sink(SlowSink, {"state": state})
    tracemalloc.start()
    try:
        result = env.submit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["SlowSink"].records_in == records and state["consumed"] == records
    # Two queues of queue_size, one record in each worker's hands, one being made.
    bound = 2 * queue_size + 4
    assert state["max_in_flight"] <= bound, state
    assert peak < (bound + 10) * PAYLOAD * 1.5 < records * PAYLOAD / 10
