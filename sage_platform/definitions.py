"""The one composition root: ``dagster dev -m sage_platform.definitions`` or workspace.yaml.

Platform-wide policy lives here:
- how a run's steps execute, from ``SAGE_DAGSTER_EXECUTOR``: by default in one process per run
  (``in_process_executor``: the embedding model loads once per run instead of once per step);
  ``multiprocess`` runs independent steps in parallel processes, capped by the pools; ``k8s`` and
  ``docker`` give each step its own Job or container (the profiles under ``deploy/``);
- the ``sage`` resource reads ``SAGE_*`` settings, so one environment configures the whole graph.
"""

import warnings

from dagster import (
    BetaWarning,
    Definitions,
    ExecutorDefinition,
    JobDefinition,
    in_process_executor,
    multiprocess_executor,
)

from sage_platform.assets import rag_assets, rag_resources
from sage_platform.assets.checks import quality_checks
from sage_platform.config import Settings
from sage_platform.jobs import jobs
from sage_platform.sensors import schedules, sensors

# Dagster's own sensors pass its beta owners= parameter when definitions resolve, in every process that
# loads them (step processes too): not ours to fix, and not worth a line per step.
warnings.filterwarnings("ignore", "Parameter `owners`", BetaWarning)


def executor(kind: str) -> ExecutorDefinition:
    if kind == "multiprocess":
        return multiprocess_executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if kind == "docker":
        from dagster_docker import docker_executor

        return docker_executor
    return in_process_executor


defs = Definitions(
    assets=rag_assets,
    asset_checks=quality_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources=rag_resources(),
    executor=executor(Settings().dagster_executor),
)


def job_named(name: str) -> JobDefinition:
    """A job of ``defs``, as a step process rebuilds it (``build_reconstructable_job``)."""
    return defs.resolve_job_def(name)
