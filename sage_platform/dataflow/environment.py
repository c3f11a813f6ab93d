"""The environment API every runtime shares: build a pipeline with ``from_source``/``from_batch``, then ``submit``.

Usage::

    env = LocalEnvironment("rag_pipeline")
    env.from_source(FileSource, {"file_path": "questions.txt"}).map(DenseRetriever).sink(TerminalSink)
    result = env.submit()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sage_platform.dataflow.pipeline import DataStream, Pipeline


class BaseEnvironment:
    environment = "base"

    def __init__(self, name: str = "pipeline", config: Mapping[str, Any] | None = None, *,
                 pipeline: Pipeline | None = None) -> None:  # fmt: skip
        self.name = name
        self.config: dict[str, Any] = dict(config or {})
        self.pipeline = pipeline if pipeline is not None else Pipeline(name)

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline, config: Mapping[str, Any] | None = None) -> BaseEnvironment:
        """Run a pipeline built elsewhere (another environment's) here: the same steps, unchanged."""
        return cls(pipeline.name, config, pipeline=pipeline)

    def from_source(self, function: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        """A source: a ``SourceFunction``/``BatchFunction`` class, a callable or an iterable."""
        return DataStream(self.pipeline, self.pipeline.add("source", function, config, options))

    def from_batch(self, data: Any, config: Mapping[str, Any] | None = None, **options: Any) -> DataStream:
        """A bounded source: a ``BatchFunction`` class, or a list or other iterable of records."""
        return DataStream(self.pipeline, self.pipeline.add("batch", data, config, options))

    def _check_runnable(self) -> None:
        if not self.pipeline.stages:
            raise ValueError(f"pipeline {self.name!r} has no steps: start with from_source() or from_batch()")
        if len(self.pipeline.stages) == 1:
            raise ValueError(f"pipeline {self.name!r} has only its source; add map(), sink() or another step")
