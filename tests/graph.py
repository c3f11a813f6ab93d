"""Helpers to materialize the real asset graph (with its asset checks) with Dagster's API."""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from sage_platform.assets import rag_assets, rag_resources
from sage_platform.assets.checks import quality_checks


def run_graph(instance: DagsterInstance | None = None, *, raise_on_error: bool = True) -> ExecuteInProcessResult:
    return materialize(
        [*rag_assets, *quality_checks],
        resources=rag_resources(),
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key.path == [asset]:
            return {key: value.value for key, value in materialization.metadata.items()}
    raise KeyError(f"{asset} was not materialized")
