"""A pipeline: a chain of steps, checked as it is built.

Each step names its function class, its config and its runtime options. A wrong wiring fails when the
step is added, naming both operators: a retriever before a source, a prompt builder whose template
needs ``context`` after a step that gives only ``query``, a step after a sink.

Usage::

    pipeline = Pipeline("rag")
    stream = DataStream(pipeline).source(FileSource, {"file_path": "questions.txt"})
    stream.map(DenseRetriever).map(QAPromptor).sink(TerminalSink)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sage_platform.dataflow.functions import (
    ERROR_POLICIES,
    BaseFunction,
    ErrorPolicy,
    Kind,
    function_class,
    kind_base,
)

KeyFunction = Callable[[Any], Hashable]
WINDOW_FIELDS = frozenset({"key", "records"})
DEFAULT_RETRIES = 3


class WiringError(TypeError):
    """A pipeline wired wrongly; raised when the step is added, before anything runs."""


@dataclass(frozen=True)
class Window:
    """``.batch(size=32)`` or ``.batch(seconds=2.0)`` (or both: whichever comes first)."""

    size: int | None
    seconds: float | None


@dataclass(frozen=True)
class Stage:
    kind: Kind
    name: str
    function: type[BaseFunction] | None
    config: dict[str, Any]
    parallelism: int = 1
    batch_size: int = 1
    batch_wait: float = 0.05
    on_error: ErrorPolicy = "fail"
    retries: int = 0
    key: KeyFunction | None = None  # set by keyby: records with one key go to one worker
    window: Window | None = None
    fields: frozenset[str] | None = field(default=None, compare=False)  # fields of the records it emits

    def build(self) -> BaseFunction:
        assert self.function is not None, f"{self.name} has no function"
        return self.function(self.config)


class Pipeline:
    """The steps in order. Environments run it; it holds no runtime state, so one pipeline can run many times."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stages: list[Stage] = []
        self._key: KeyFunction | None = None

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}: {' → '.join(s.name for s in self.stages)})"

    @property
    def source(self) -> Stage:
        return self.stages[0]

    @property
    def bounded(self) -> bool:
        return self.stages[0].kind == "batch"

    def add(self, kind: Kind, target: Any, config: Mapping[str, Any] | None, options: dict[str, Any]) -> Stage:
        function = function_class(target, kind)
        expected = kind_base(kind)
        if not issubclass(function, expected) or (kind == "source" and function.kind not in ("source", "batch")):
            raise WiringError(
                f"{function.__name__} is a {type_label(function)}; "
                f"{_METHOD[kind]} takes a {expected.__name__}{_hint(function)}"
            )
        if kind == "source" and function.kind == "batch":
            kind = "batch"
        config = dict(config or {})
        stage = self._stage(kind, function.__name__, function, config, options)
        self._check_wiring(stage, function.fields_in(config), function.fields_out(config))
        self.stages.append(stage)
        return stage

    def add_window(self, window: Window) -> Stage:
        if window.size is None and window.seconds is None:
            raise ValueError("batch() needs size=N, seconds=S or both")
        if (window.size is not None and window.size < 1) or (window.seconds is not None and window.seconds <= 0):
            raise ValueError("batch() needs a positive size and a positive number of seconds")
        stage = self._stage("window", "Window", None, {}, {})
        stage = Stage(**{**stage.__dict__, "window": window})
        self._check_wiring(stage, frozenset(), WINDOW_FIELDS)
        self.stages.append(stage)
        return stage

    def keyby(self, key: str | KeyFunction) -> None:
        if not self.stages:
            raise WiringError("keyby() needs a source before it")
        self._key = (lambda record: record[key]) if isinstance(key, str) else key

    def _stage(
        self,
        kind: Kind,
        base_name: str,
        function: type[BaseFunction] | None,
        config: dict[str, Any],
        options: dict[str, Any],
    ) -> Stage:
        unknown = set(options) - {"parallelism", "batch_size", "batch_wait", "on_error", "retries", "name"}
        if unknown:
            raise TypeError(f"unknown step option(s) {', '.join(sorted(unknown))} for {base_name}")
        name = options.get("name") or self._unique(base_name)
        policy = options.get("on_error", function.on_error if function else "fail")
        if policy not in ERROR_POLICIES:
            raise ValueError(f"{name}: on_error must be one of {', '.join(ERROR_POLICIES)}, not {policy!r}")
        retries = options.get("retries", function.retries if function else 0)
        if policy == "retry" and not retries:
            retries = DEFAULT_RETRIES
        numbers = {
            "parallelism": options.get("parallelism", function.parallelism if function else 1),
            "batch_size": options.get("batch_size", function.batch_size if function else 1),
        }
        for option, value in numbers.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {option} must be a positive integer, not {value!r}")
        if kind in ("source", "batch") and numbers["parallelism"] != 1:
            raise ValueError(f"{name}: a source runs in one worker (parallelism 1)")
        key, self._key = self._key, None
        return Stage(kind, name, function, config, numbers["parallelism"], numbers["batch_size"],
                     float(options.get("batch_wait", 0.05)), policy, int(retries), key)  # fmt: skip

    def _unique(self, base: str) -> str:
        taken = {s.name for s in self.stages}
        if base not in taken:
            return base
        n = 2
        while f"{base}#{n}" in taken:
            n += 1
        return f"{base}#{n}"

    def _check_wiring(self, stage: Stage, needs: frozenset[str], gives: frozenset[str] | None) -> None:
        if stage.kind in ("source", "batch"):
            if self.stages:
                raise WiringError(
                    f"{stage.function.__name__ if stage.function else stage.name} is a source: it starts a pipeline, it cannot follow {self.stages[-1].name}"
                )
            object.__setattr__(stage, "fields", gives)
            return
        if not self.stages:
            raise WiringError(f"{stage.name} needs a source before it: start with from_source() or from_batch()")
        upstream = self.stages[-1]
        if upstream.kind == "sink":
            raise WiringError(f"{upstream.name} is a sink: nothing can follow it, so {stage.name} cannot be added")
        available = upstream.fields
        missing = sorted(needs - available) if available is not None else []
        if missing:
            raise WiringError(
                f"{stage.name} needs field(s) {', '.join(map(repr, missing))}, which {upstream.name} does not give "
                f"(its records have: {', '.join(sorted(available or ())) or 'no known fields'})"
            )
        if stage.kind in ("map",):
            fields = None if available is None or gives is None else available | gives
        elif stage.kind in ("flatmap", "window"):
            fields = gives
        else:  # filter and sink pass records on unchanged
            fields = available
        object.__setattr__(stage, "fields", fields)


_METHOD = {"source": "from_source()", "batch": "from_batch()", "map": "map()", "flatmap": "flatmap()",
           "filter": "filter()", "sink": "sink()", "window": "batch()"}  # fmt: skip


def type_label(function: type[BaseFunction]) -> str:
    for base in function.__mro__[1:]:
        if base.__module__ == BaseFunction.__module__ and not base.__name__.startswith("_"):
            return base.__name__
    return "function"


def _hint(function: type[BaseFunction]) -> str:
    return f"; use {_METHOD[function.kind]}" if function.kind in _METHOD and function.kind != "window" else ""


class DataStream:
    """What ``from_source``/``map``/... return: the end of the chain, to add the next step to."""

    def __init__(self, pipeline: Pipeline, stage: Stage | None = None) -> None:
        self.pipeline = pipeline
        self._stage = stage

    def _then(self, kind: Kind, target: Any, config: Mapping[str, Any] | None, options: dict[str, Any]) -> DataStream:
        self._check_tail(target)
        return DataStream(self.pipeline, self.pipeline.add(kind, target, config, options))

    def _check_tail(self, target: Any) -> None:
        tail = self.pipeline.stages[-1] if self.pipeline.stages else None
        if self._stage is not None and tail is not self._stage:
            name = getattr(target, "__name__", type(target).__name__)
            raise WiringError(
                f"{self._stage.name} already feeds {self.pipeline.stages[self.pipeline.stages.index(self._stage) + 1].name}; "
                f"a stream is a chain, so {name} must follow the last step"
            )

    def map(self, function: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        return self._then("map", function, config, options)

    def flatmap(self, function: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        return self._then("flatmap", function, config, options)

    def filter(self, function: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        return self._then("filter", function, config, options)

    def sink(self, function: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        return self._then("sink", function, config, options)

    def keyby(self, key: str | KeyFunction) -> DataStream:
        """Records with the same key go to the same worker of the next step, and share its windows."""
        self._check_tail(key)
        self.pipeline.keyby(key)
        return self

    def batch(self, size: int | None = None, seconds: float | None = None) -> DataStream:
        """Windows of ``size`` records or ``seconds`` (per key after keyby): ``{"key": k, "records": [...]}``."""
        self._check_tail(self.batch)
        return DataStream(self.pipeline, self.pipeline.add_window(Window(size, seconds)))
