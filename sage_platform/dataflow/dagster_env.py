"""The pipeline as Dagster: ``to_dagster_job`` (one op per step), ``to_asset``, ``DagsterEnvironment``.

In the job the source op splits its records into partitions of ``partition_size`` (dynamic outputs);
every later step is an op mapped over the partitions, so the multiprocess executor (or the run
launcher and executor the code location configures) spreads the work; a last op gathers the
counters. Counters ride along with the records, so the result equals a local run's.

Usage::

    job = to_dagster_job(env.pipeline, partition_size=50)      # add to a Definitions, or:
    result = DagsterEnvironment.for_pipeline(env.pipeline).submit()   # runs it in process on the instance
    asset = to_asset(env.pipeline, "my_answers", deps=["pgvector_index"])
"""

import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetsDefinition,
    DagsterInstance,
    DynamicOut,
    DynamicOutput,
    ExecutorDefinition,
    In,
    JobDefinition,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    Out,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
    job,
    op,
)

from sage_platform.dataflow.environment import BaseEnvironment
from sage_platform.dataflow.functions import PENDING
from sage_platform.dataflow.pipeline import Pipeline, Stage
from sage_platform.dataflow.result import PipelineResult, merged
from sage_platform.dataflow.runner import OperatorStats, SkippedRecord, StageRunner, WindowBuffer

DEFAULT_PARTITION_SIZE = 100
_COLUMNS = [("operator", "string"), ("kind", "string"), ("in", "int"), ("out", "int"), ("errors", "int"),
            ("skipped", "int"), ("p50_ms", "float"), ("p99_ms", "float")]  # fmt: skip


@dataclass
class Partition:
    """Records of one partition, with the counters of the steps it went through."""

    records: list[Any]
    stats: list[OperatorStats] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower() or "step"


def operators_table(operators: Sequence[OperatorStats]) -> MetadataValue:
    schema = TableSchema(columns=[TableColumn(name, kind) for name, kind in _COLUMNS])
    rows = []
    for s in operators:
        row = s.as_row()
        rows.append(TableRecord({name: row[name] if row[name] is not None else (0.0 if kind == "float" else 0)
                                 for name, kind in _COLUMNS}))  # fmt: skip
    return MetadataValue.table(rows, schema)


def result_metadata(result: PipelineResult) -> dict[str, Any]:
    """A run's counters and its operators' summaries (evaluator scores, sink previews) as Dagster metadata."""
    metadata: dict[str, Any] = {"operators": operators_table(result.operators), "duration_s": round(result.duration_s, 3),
                                "records_out": result.operators[-1].records_out, "skipped": len(result.skipped)}  # fmt: skip
    for operator, summary in result.summary.items():
        for key, value in summary.items():
            if isinstance(value, int | float):
                metadata[f"{operator}/{key}"] = float(value) if isinstance(value, float) else value
            elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
                columns = list(value[0])
                rows = [TableRecord({c: _cell(r.get(c)) for c in columns}) for r in value]
                schema = TableSchema(columns=[TableColumn(c, "string") for c in columns])
                metadata[f"{operator}/{key}"] = MetadataValue.table(rows, schema)
    return metadata


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _run_stage(stage: Stage, part: Partition) -> Partition:
    if stage.kind == "window":
        buffer = WindowBuffer(stage)
        now = time.monotonic()
        out = [w for r in part.records for w in buffer.add(r, now)] + buffer.flush()
        return Partition(out, [*part.stats, buffer.stats], part.skipped)
    runner = StageRunner(stage)
    failed = True
    outputs: list[Any] = []
    try:
        runner.open()
        for start in range(0, len(part.records), stage.batch_size):
            outputs.extend(runner.process(part.records[start : start + stage.batch_size]))
        failed = False
    finally:
        stats, skipped = runner.close(failed=failed)
    return Partition(outputs, [*part.stats, stats], [*part.skipped, *skipped])


def to_dagster_job(
    pipeline: Pipeline,
    *,
    name: str | None = None,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    executor_def: ExecutorDefinition | None = None,
    description: str | None = None,
) -> JobDefinition:
    """One op per step: ``<job>__<step>``, mapped over the source's partitions, then ``<job>__result``."""
    job_name = slug(name or pipeline.name)
    source_stage, later = pipeline.stages[0], pipeline.stages[1:]

    @op(
        name=f"{job_name}__{slug(source_stage.name)}",
        out=DynamicOut(Partition),
        description=f"source: {source_stage.name}",
    )
    def source_op(context: OpExecutionContext) -> Iterator[DynamicOutput[Partition]]:
        runner = StageRunner(source_stage)
        failed, batch, count = True, [], 0
        try:
            runner.open()
            while (record := runner.next_record()) is not None:
                if record is PENDING:  # a job runs what the stream has: it ends when the source says so
                    continue
                batch.append(record)
                if len(batch) == partition_size:
                    yield DynamicOutput(Partition(batch), mapping_key=f"p{count}")
                    batch, count = [], count + 1
            failed = False
        finally:
            stats, skipped = runner.close(failed=failed)
        context.log.info(f"{source_stage.name}: {stats.records_out} records in {count + 1} partitions")
        yield DynamicOutput(
            Partition(batch, [stats], skipped), mapping_key=f"p{count}"
        )  # the last carries the source's counters

    def stage_op(stage: Stage) -> Any:
        @op(name=f"{job_name}__{slug(stage.name)}", ins={"part": In(Partition)}, out=Out(Partition),
            description=f"{stage.kind}: {stage.name}")  # fmt: skip
        def run(context: OpExecutionContext, part: Partition) -> Partition:
            result = _run_stage(stage, part)
            own = result.stats[-1]
            context.add_output_metadata({"in": own.records_in, "out": own.records_out, "errors": own.errors})
            return result

        return run

    pipeline_name = pipeline.name

    @op(name=f"{job_name}__result", ins={"parts": In(list[Partition])}, out=Out(PipelineResult))
    def result_op(context: OpExecutionContext, parts: list[Partition]) -> PipelineResult:
        result = PipelineResult(
            pipeline_name, "dagster", merged(pipeline.stages, [s for p in parts for s in p.stats]),
            [r for p in parts for r in p.records], [s for p in parts for s in p.skipped],
        )  # fmt: skip
        context.add_output_metadata(result_metadata(result))
        return result

    ops = [stage_op(stage) for stage in later]

    @job(name=job_name, executor_def=executor_def, description=description or f"dataflow pipeline {pipeline.name}: "
         + " → ".join(s.name for s in pipeline.stages))  # fmt: skip
    def pipeline_job() -> None:
        parts = source_op()
        for step in ops:
            parts = parts.map(step)
        result_op(parts.collect())

    return pipeline_job


def to_asset(pipeline: Pipeline, name: str | None = None, *, deps: Sequence[Any] = (), group_name: str | None = None,
             config: Mapping[str, Any] | None = None, **asset_options: Any) -> AssetsDefinition:  # fmt: skip
    """An asset that runs the pipeline on threads (``LocalEnvironment``) and records its counters."""
    from sage_platform.dataflow.local import LocalEnvironment

    def materialize() -> MaterializeResult[None]:
        result = LocalEnvironment(pipeline.name, config, pipeline=pipeline).submit()
        return MaterializeResult(metadata=result_metadata(result))

    options = {"deps": list(deps), "group_name": group_name, "kinds": {"python"}, **asset_options}
    definition: AssetsDefinition = asset(name=slug(name or pipeline.name), **options)(materialize)
    return definition


class DagsterEnvironment(BaseEnvironment):
    """Compiles the pipeline to a Dagster job and runs it in process on the Dagster instance
    (``DAGSTER_HOME``'s, else a temporary one). Config: ``partition_size``. For the multiprocess
    executor or a run launcher, add ``pipeline.to_dagster_job()`` to a code location instead."""

    environment = "dagster"

    def to_job(self) -> JobDefinition:
        return to_dagster_job(
            self.pipeline, partition_size=int(self.config.get("partition_size", DEFAULT_PARTITION_SIZE))
        )

    def submit(self, autostop: bool = True) -> PipelineResult:
        if not autostop:
            raise ValueError(
                "a Dagster job runs until its sources end: use LocalEnvironment or RemoteEnvironment to stream"
            )
        self._check_runnable()
        job_def = self.to_job()
        began = time.perf_counter()
        instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
        run = job_def.execute_in_process(instance=instance)
        result: PipelineResult = run.output_for_node(f"{job_def.name}__result")
        result.duration_s = time.perf_counter() - began
        return result
