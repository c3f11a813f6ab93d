"""Running one step over records: batching, the error policy and the counters. Every environment uses it.

Usage::

    runner = StageRunner(stage)
    runner.open()
    outputs = runner.process([record, ...])     # what the step passes on
    stats, skipped = runner.close()
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sage_platform.dataflow.functions import PENDING
from sage_platform.dataflow.pipeline import Stage, Window

MAX_SKIPPED_KEPT = 1000  # skipped records kept with their errors; the count goes on beyond


class OperatorError(RuntimeError):
    """A step failed under the ``fail`` policy (or ran out of retries); names the step and the record."""

    def __init__(self, operator: str, record: Any, error: BaseException) -> None:
        super().__init__(f"{operator} failed on {_short(record)}: {type(error).__name__}: {error}")
        self.operator = operator
        self.record = record


@dataclass
class SkippedRecord:
    operator: str
    record: Any
    error: str


@dataclass
class OperatorStats:
    """Per-operator counters: records in and out, errors, retries, and the latency of each call."""

    name: str
    kind: str
    parallelism: int = 1
    records_in: int = 0
    records_out: int = 0
    errors: int = 0
    skipped: int = 0
    retries: int = 0
    calls: int = 0
    latencies_s: list[float] = field(default_factory=list, repr=False)
    summary: dict[str, Any] = field(default_factory=dict)

    def percentile_ms(self, q: float) -> float | None:
        return round(float(np.percentile(self.latencies_s, q)) * 1000, 3) if self.latencies_s else None

    @property
    def p50_ms(self) -> float | None:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile_ms(99)

    def merge(self, other: OperatorStats) -> None:
        """Fold another worker's counters into these (workers of one step, partitions of a job)."""
        for name in ("records_in", "records_out", "errors", "skipped", "retries", "calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies_s.extend(other.latencies_s)

    def as_row(self) -> dict[str, Any]:
        return {"operator": self.name, "kind": self.kind, "parallelism": self.parallelism,
                "in": self.records_in, "out": self.records_out, "errors": self.errors, "skipped": self.skipped,
                "retries": self.retries, "calls": self.calls, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms}  # fmt: skip


class StageRunner:
    """One worker of one step: its own function instance, counters and skipped records."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.function = stage.build()
        self.stats = OperatorStats(stage.name, stage.kind, stage.parallelism)
        self.skipped: list[SkippedRecord] = []
        self._opened = False

    def open(self) -> None:
        self.function.open()
        self._opened = True

    def close(self, *, failed: bool = False) -> tuple[OperatorStats, list[SkippedRecord]]:
        """``close()`` the function after a good run, ``abort()`` it after a failed one."""
        if not self._opened:
            pass
        elif failed:
            self.function.abort()
        else:
            self.stats.summary.update(self.function.close())
        return self.stats, self.skipped

    # Sources
    def next_record(self) -> Any:
        """The source's next record, or None; a failing source follows its policy like any step."""
        results = self._call([None], lambda _: [self.function.execute(None)])
        record = results[0] if results else None
        if record is not None and record is not PENDING:
            self.stats.records_out += 1
        return record

    # Every other step
    def process(self, records: list[Any]) -> list[Any]:
        self.stats.records_in += len(records)
        batched = self.stage.batch_size > 1
        if batched:
            results = self._call(records, self._batch_call, isolate=True)
            pairs = list(zip(records, results, strict=True)) if results is not None else self._one_by_one(records)
        else:
            pairs = self._one_by_one(records)
        outputs = [out for record, result in pairs for out in self._outputs(record, result)]
        if self.stage.kind == "sink":
            self.stats.records_out += len(pairs)
            return []
        self.stats.records_out += len(outputs)
        return outputs

    def _one_by_one(self, records: list[Any]) -> list[tuple[Any, Any]]:
        pairs = []
        for record in records:
            result = self._call([record], lambda batch: [self.function.execute(batch[0])])
            if result is not None:
                pairs.append((record, result[0]))
        return pairs

    def _batch_call(self, records: list[Any]) -> list[Any]:
        results = self.function.execute_batch(records)
        if len(results) != len(records):
            raise ValueError(f"execute_batch returned {len(results)} results for {len(records)} records")
        return results

    def _call(self, records: list[Any], call: Any, *, isolate: bool = False) -> list[Any] | None:
        """``call(records)`` with retries; on final failure: raise (fail), or record and return None (skip).

        With ``isolate`` a failing batch returns None at once so the caller retries record by record, and
        only the bad record is skipped or fails the run."""
        attempts = self.stage.retries + 1
        for attempt in range(attempts):
            began = time.perf_counter()
            try:
                results: list[Any] = call(records)
            except Exception as error:  # the step's own code: any exception follows the policy
                self.stats.errors += 1
                if attempt + 1 < attempts:
                    self.stats.retries += 1
                    continue
                if isolate and len(records) > 1:
                    return None
                if self.stage.on_error == "skip":
                    self.stats.skipped += len(records)
                    if len(self.skipped) < MAX_SKIPPED_KEPT:
                        self.skipped.append(
                            SkippedRecord(self.stage.name, records[0], f"{type(error).__name__}: {error}")
                        )
                    return None
                raise OperatorError(self.stage.name, records[0], error) from error
            finally:
                self.stats.calls += 1
                self.stats.latencies_s.append(time.perf_counter() - began)
            return results
        return None  # not reached: the last attempt returns or raises

    def _outputs(self, record: Any, result: Any) -> Iterable[Any]:
        kind = self.stage.kind
        if kind == "map":
            return () if result is None else (result,)
        if kind == "flatmap":
            return () if result is None else result
        if kind == "filter":
            return (record,) if result else ()
        return ()


class WindowBuffer:
    """Records grouped per key into windows of ``size`` records or ``seconds``, whichever closes first."""

    def __init__(self, stage: Stage) -> None:
        assert stage.window is not None
        self.window: Window = stage.window
        self.key = stage.key
        self.stats = OperatorStats(stage.name, "window")
        self._open: dict[Hashable, tuple[float, list[Any]]] = {}

    def add(self, record: Any, now: float) -> list[dict[str, Any]]:
        self.stats.records_in += 1
        key = self.key(record) if self.key else None
        started, records = self._open.setdefault(key, (now, []))
        records.append(record)
        if self.window.size is not None and len(records) >= self.window.size:
            return [self._emit(key)]
        return []

    def due(self, now: float) -> list[dict[str, Any]]:
        if self.window.seconds is None:
            return []
        return [
            self._emit(key) for key, (started, _) in list(self._open.items()) if now - started >= self.window.seconds
        ]

    def next_deadline(self) -> float | None:
        if self.window.seconds is None or not self._open:
            return None
        return min(started for started, _ in self._open.values()) + self.window.seconds

    def flush(self) -> list[dict[str, Any]]:
        return [self._emit(key) for key in list(self._open)]

    def _emit(self, key: Hashable) -> dict[str, Any]:
        _, records = self._open.pop(key)
        self.stats.records_out += 1
        return {"key": key, "records": records}


def _short(record: Any, limit: int = 120) -> str:
    text = repr(record)
    return text if len(text) <= limit else text[: limit - 1] + "…"
