"""Building pipelines: function kinds, config, plain callables, and wiring errors naming both operators."""

from __future__ import annotations

from typing import Any

import pytest

import sage_platform.dataflow as dataflow
from sage_platform.dataflow import (
    FilterFunction,
    FlatMapFunction,
    LocalEnvironment,
    MapFunction,
    SinkFunction,
    SourceFunction,
    WiringError,
)
from sage_platform.dataflow.library import __all__ as LIBRARY


class Count(SourceFunction):
    provides = frozenset({"n"})

    def open(self) -> None:
        self.n = 0

    def execute(self, data: Any = None) -> Any:
        self.n += 1
        return {"n": self.n} if self.n <= self.config["upto"] else None


class AddSuffix(MapFunction):
    requires = frozenset({"n"})
    provides = frozenset({"label"})

    def execute(self, data: Any) -> Any:
        return {**data, "label": f"{data['n']}{self.config['suffix']}"}


class Repeat(FlatMapFunction):
    def execute(self, data: Any) -> Any:
        return [data] * data["n"]


class Odd(FilterFunction):
    def execute(self, data: Any) -> bool:
        return bool(data["n"] % 2)


class Keep(SinkFunction):
    kept: list[Any] = []

    def execute(self, data: Any) -> None:
        Keep.kept.append(data)


def test_function_classes_get_their_config_and_run_in_order() -> None:
    Keep.kept = []
    env = LocalEnvironment("kinds")
    env.from_source(Count, {"upto": 5}).filter(Odd).flatmap(Repeat).map(AddSuffix, {"suffix": "!"}).sink(Keep)
    result = env.submit()
    assert [r["label"] for r in Keep.kept] == ["1!", "3!", "3!", "3!", "5!", "5!", "5!", "5!", "5!"]
    assert [(s.name, s.records_in, s.records_out) for s in result.operators] == [
        ("Count", 0, 5), ("Odd", 5, 3), ("Repeat", 3, 9), ("AddSuffix", 9, 9), ("Keep", 9, 9)]  # fmt: skip


def test_plain_callables_and_iterables_are_steps() -> None:
    env = LocalEnvironment("callables")
    env.from_batch(range(6)).map(lambda n: n * 10).filter(lambda n: n > 20).flatmap(lambda n: (n, -n))
    assert sorted(env.submit().outputs) == [-50, -40, -30, 30, 40, 50]


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in [*dataflow.__all__, *LIBRARY]:
        assert getattr(dataflow, name) is not None, name


def test_a_missing_field_names_both_operators() -> None:
    env = LocalEnvironment("wrong")
    stream = env.from_source(Count, {"upto": 1})
    with pytest.raises(
        WiringError,
        match=r"QAPromptor needs field\(s\) 'context', 'query', which Count does not give \(its records have: n\)",
    ):
        stream.map(dataflow.QAPromptor)


def test_a_template_field_is_required_too() -> None:
    stream = LocalEnvironment("t").from_batch([{"query": "q"}]).map(lambda r: r)  # fields unknown: not checked
    stream.map(dataflow.QAPromptor, {"template": "{context} {nope}"})
    known = LocalEnvironment("t").from_source(dataflow.FileSource, {"file_path": "q.txt"})
    with pytest.raises(WiringError, match=r"QAPromptor needs field\(s\) 'context', 'nope', which FileSource"):
        known.map(dataflow.QAPromptor, {"template": "{context} {nope}"})


def test_nothing_follows_a_sink_and_a_source_starts() -> None:
    env = LocalEnvironment("wrong")
    sink = env.from_source(Count, {"upto": 1}).sink(Keep)
    with pytest.raises(WiringError, match="Keep is a sink: nothing can follow it, so AddSuffix cannot be added"):
        sink.map(AddSuffix, {"suffix": ""})
    with pytest.raises(WiringError, match="Count is a source: it starts a pipeline, it cannot follow Keep"):
        env.from_source(Count)


def test_a_function_of_the_wrong_kind_is_refused() -> None:
    stream = LocalEnvironment("wrong").from_source(Count, {"upto": 1})
    with pytest.raises(WiringError, match=r"Odd is a FilterFunction; map\(\) takes a MapFunction; use filter\(\)"):
        stream.map(Odd)
    with pytest.raises(WiringError, match=r"AddSuffix is a MapFunction; from_source\(\) takes a SourceFunction"):
        LocalEnvironment("x").from_source(AddSuffix)


def test_a_stream_is_a_chain() -> None:
    env = LocalEnvironment("fork")
    start = env.from_source(Count, {"upto": 1})
    start.map(AddSuffix, {"suffix": ""})
    with pytest.raises(WiringError, match="Count already feeds AddSuffix"):
        start.map(AddSuffix, {"suffix": "?"})


def test_step_options_are_checked() -> None:
    stream = LocalEnvironment("opts").from_source(Count, {"upto": 1})
    with pytest.raises(ValueError, match="parallelism must be a positive integer, not 0"):
        stream.map(AddSuffix, parallelism=0)
    with pytest.raises(ValueError, match="on_error must be one of fail, skip, retry, not 'ignore'"):
        stream.map(AddSuffix, on_error="ignore")
    with pytest.raises(TypeError, match="unknown step option"):
        stream.map(AddSuffix, paralelism=2)
    with pytest.raises(TypeError, match="pass the class AddSuffix, not an instance"):
        stream.map(AddSuffix({"suffix": ""}))


def test_the_same_function_twice_gets_distinct_names() -> None:
    env = LocalEnvironment("twice")
    env.from_batch([{"n": 1}]).map(AddSuffix, {"suffix": "a"}).map(AddSuffix, {"suffix": "b"})
    assert [s.name for s in env.pipeline.stages] == ["IterableSource", "AddSuffix", "AddSuffix#2"]
    assert env.submit().outputs == [{"n": 1, "label": "1b"}]
