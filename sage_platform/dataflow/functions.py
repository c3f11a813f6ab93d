"""The function kinds a pipeline is built from, as in the original framework.

A function is a small class: its config dict is ``self.config`` and ``execute(self, data)`` does the
work. ``MapFunction`` returns one record, ``FlatMapFunction`` an iterable, ``FilterFunction`` a bool,
``SinkFunction`` nothing; a ``SourceFunction`` or ``BatchFunction`` returns the next record, or
``None`` when it has no more.

Usage::

    class Shout(MapFunction):
        def execute(self, data):
            return {**data, "query": data["query"].upper() + self.config.get("suffix", "!")}

Class attributes declare what the runtime needs to know: ``requires``/``provides`` (record fields,
checked when the pipeline is built), ``batch_size`` (``execute_batch`` receives that many records),
``parallelism`` (workers), and the error policy ``on_error`` (``fail``, ``skip`` or ``retry``) with
``retries``. Each can be overridden per step: ``.map(Shout, {...}, parallelism=4, on_error="skip")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

PENDING: Any = type("Pending", (), {"__repr__": lambda self: "PENDING"})()
"""What a streaming source returns when it has nothing yet: the runtime asks again (None means exhausted)."""
ErrorPolicy = Literal["fail", "skip", "retry"]
ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("fail", "skip", "retry")
Kind = Literal["source", "batch", "map", "flatmap", "filter", "sink", "window"]


class BaseFunction:
    """One operator's code. A new instance serves each worker, so instance state is per worker."""

    kind: ClassVar[Kind]
    requires: ClassVar[frozenset[str]] = frozenset()
    # None: unknown until run time, so later steps are not checked (undeclared user functions).
    provides: ClassVar[frozenset[str] | None] = None
    batch_size: ClassVar[int] = 1
    parallelism: ClassVar[int] = 1
    on_error: ClassVar[ErrorPolicy] = "fail"
    retries: ClassVar[int] = 0

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.config: dict[str, Any] = {**(config or {}), **kwargs}

    @classmethod
    def fields_in(cls, config: Mapping[str, Any]) -> frozenset[str]:
        """The record fields this function needs, for the given config (default ``requires``)."""
        return cls.requires

    @classmethod
    def fields_out(cls, config: Mapping[str, Any]) -> frozenset[str] | None:
        """The fields it adds (or, for sources, emits) with this config; None when unknown."""
        return cls.provides

    def open(self) -> None:
        """Called once per worker before the first record: load models, open connections."""

    def close(self) -> dict[str, Any]:
        """Called once per worker after the last record of a successful run; returns summary figures
        (evaluators' scores, a sink's preview) that the run's result reports per operator."""
        return {}

    @classmethod
    def combine(cls, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """One summary from those of several workers or partitions: counts add up, lists join, other
        values are the first worker's. Functions whose figures do not add (evaluators) recompute them."""
        combined: dict[str, Any] = {}
        for summary in summaries:
            for key, value in summary.items():
                mine = combined.get(key)
                joins = isinstance(value, list) and isinstance(mine, list)
                adds = isinstance(value, int) and isinstance(mine, int) and not isinstance(value, bool)
                combined[key] = mine + value if joins or adds else (value if mine is None else mine)
        return combined

    def abort(self) -> None:
        """Called instead of ``close()`` when the run failed: roll back, release, report nothing."""

    def execute(self, data: Any) -> Any:
        """One record's result; a function that only implements ``execute_batch`` gets it from a batch of one."""
        if type(self).execute_batch is not BaseFunction.execute_batch:
            return self.execute_batch([data])[0]
        raise NotImplementedError(f"{type(self).__name__}.execute(self, data) is not implemented")

    def execute_batch(self, records: list[Any]) -> list[Any]:
        """One result per record; functions that gain from batching (embedders, generators) override it."""
        return [self.execute(record) for record in records]


class SourceFunction(BaseFunction):
    """Emits records: ``execute()`` returns the next one, or None when there is none (yet)."""

    kind: ClassVar[Kind] = "source"

    def execute(self, data: Any = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.execute(self) is not implemented")


class BatchFunction(SourceFunction):
    """A bounded source: None means exhausted even when the pipeline runs with ``autostop=False``."""

    kind = "batch"


class MapFunction(BaseFunction):
    kind = "map"


class FlatMapFunction(BaseFunction):
    """``execute`` returns an iterable; each item becomes a record."""

    kind = "flatmap"


class FilterFunction(BaseFunction):
    """``execute`` returns True to keep the record."""

    kind = "filter"


class SinkFunction(BaseFunction):
    kind = "sink"


class _CallableFunction(BaseFunction):
    """A plain callable in a step: ``.map(lambda r: {...})``. Its fields are unknown until run time."""

    call: Callable[..., Any]

    def execute(self, data: Any = None) -> Any:
        return self.call(data) if self.kind not in ("source", "batch") else self.call()


class _IterableSource(BatchFunction):
    """``from_batch([...])`` or ``from_source(iterator)``: emits the items of an iterable."""

    items: Iterable[Any]

    def open(self) -> None:
        self._iterator = iter(self.items)

    def execute(self, data: Any = None) -> Any:
        return next(self._iterator, None)


_KIND_BASES: dict[str, type[BaseFunction]] = {
    "source": SourceFunction,
    "batch": BatchFunction,
    "map": MapFunction,
    "flatmap": FlatMapFunction,
    "filter": FilterFunction,
    "sink": SinkFunction,
}


def function_class(target: Any, kind: Kind) -> type[BaseFunction]:
    """The function class a step runs: ``target`` itself, or a class wrapping a callable or iterable."""
    if isinstance(target, type) and issubclass(target, BaseFunction):
        return target
    if isinstance(target, BaseFunction):
        raise TypeError(f"pass the class {type(target).__name__}, not an instance; its config goes beside it")
    if callable(target):
        name = getattr(target, "__name__", type(target).__name__)
        return type(name, (_CallableFunction, _KIND_BASES[kind]), {"kind": kind, "call": staticmethod(target)})
    if kind in ("source", "batch") and isinstance(target, Iterable) and not isinstance(target, str | bytes):
        return type("IterableSource", (_IterableSource,), {"items": target})
    raise TypeError(f"a {kind} step takes a function class or a callable, not {type(target).__name__}")


def kind_base(kind: Kind) -> type[BaseFunction]:
    return _KIND_BASES[kind]
