"""A pipeline compiled to a Dagster job at module level, so the multiprocess executor's step
processes can load it (``reconstructable``)."""

from __future__ import annotations

import os
from typing import Any

from dagster import JobDefinition, multiprocess_executor

from sage_platform.dataflow import LocalEnvironment
from sage_platform.dataflow.dagster_env import to_dagster_job


def stamp(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "pid": os.getpid()}


def spread_job() -> JobDefinition:
    env = LocalEnvironment("spread")
    env.from_batch([{"n": n} for n in range(40)]).map(stamp).filter(lambda r: r["n"] % 2 == 0)
    return to_dagster_job(
        env.pipeline, partition_size=10, executor_def=multiprocess_executor.configured({"max_concurrent": 2})
    )
