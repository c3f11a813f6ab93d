"""Declarative dataflow: ``env.from_source(...).map(...).flatmap(...).filter(...).sink(...)``.

The same pipeline runs on threads (``LocalEnvironment``), as a Dagster job (``DagsterEnvironment``)
or on Ray (``RemoteEnvironment``, with the ``ray`` extra). The operator library wraps the platform's
own parts: readers, chunker, embedder, indexes, retrievers, generators and metrics.

Usage::

    from sage_platform.dataflow import LocalEnvironment, FileSource, DenseRetriever, QAPromptor
    from sage_platform.dataflow import ExtractiveGenerator, TerminalSink

    env = LocalEnvironment("rag_pipeline")
    (env
        .from_source(FileSource, {"file_path": "questions.txt"})
        .map(DenseRetriever)
        .map(QAPromptor, {"template": "Answer from the context: {context}\\nQ: {query}\\nA:"})
        .map(ExtractiveGenerator)
        .sink(TerminalSink))
    env.submit()
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.functions import (
    PENDING,
    BaseFunction,
    BatchFunction,
    FilterFunction,
    FlatMapFunction,
    MapFunction,
    SinkFunction,
    SourceFunction,
)
from sage_platform.dataflow.local import LocalEnvironment, PipelineRun
from sage_platform.dataflow.pipeline import DataStream, Pipeline, WiringError
from sage_platform.dataflow.result import PipelineResult
from sage_platform.dataflow.runner import OperatorError, OperatorStats, SkippedRecord

if TYPE_CHECKING:
    from sage_platform.dataflow.dagster_env import DagsterEnvironment
    from sage_platform.dataflow.library import *  # noqa: F403
    from sage_platform.dataflow.ray_env import RemoteEnvironment

# Heavy modules load on first use: importing the API must not import Dagster, Ray or torch.
_LAZY = {
    "DagsterEnvironment": "sage_platform.dataflow.dagster_env",
    "RemoteEnvironment": "sage_platform.dataflow.ray_env",
}
_LIBRARY = "sage_platform.dataflow.library"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    library = import_module(_LIBRARY)
    if name in library.__all__:
        return getattr(library, name)
    raise AttributeError(f"module 'sage_platform.dataflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *import_module(_LIBRARY).__all__])


__all__ = [
    "PENDING",
    "BaseEnvironment",
    "BaseFunction",
    "BatchFunction",
    "DagsterEnvironment",
    "DataStream",
    "FilterFunction",
    "FlatMapFunction",
    "LocalEnvironment",
    "MapFunction",
    "OperatorError",
    "OperatorStats",
    "Pipeline",
    "PipelineResult",
    "PipelineRun",
    "RemoteEnvironment",
    "SinkFunction",
    "SkippedRecord",
    "SourceFunction",
    "WiringError",
]
