"""The pipeline as Dagster: one op per step over dynamic partitions, spread by the multiprocess
executor; and as an asset with its counters as metadata."""

from __future__ import annotations

import os

from dagster import Definitions, execute_job, instance_for_test, materialize, reconstructable

from sage_platform.dataflow import DagsterMetadataSink, LocalEnvironment
from sage_platform.dataflow.dagster_env import to_asset
from tests.dataflow.dagster_job import spread_job


def test_partitions_run_in_separate_processes() -> None:
    job = spread_job()
    names = {"spread__iterablesource", "spread__stamp", "spread__lambda", "spread__result"}
    assert {node.name for node in job.graph.nodes} == names  # one op per step, and the result
    with instance_for_test() as instance, execute_job(reconstructable(spread_job), instance) as run:
        assert run.success
        result = run.output_for_node("spread__result")
    assert sorted(r["n"] for r in result.outputs) == list(range(0, 40, 2))
    pids = {r["pid"] for r in result.outputs}
    assert len(pids) == 4 and os.getpid() not in pids  # one step process per partition of 10
    assert [(s.name, s.records_in, s.records_out) for s in result.operators] == [
        ("IterableSource", 0, 40), ("stamp", 40, 40), ("<lambda>", 40, 20)]  # fmt: skip


def test_a_pipeline_as_an_asset_records_its_counters() -> None:
    env = LocalEnvironment("numbers")
    env.from_batch([{"n": n} for n in range(7)]).map(lambda r: {**r, "square": r["n"] ** 2}).sink(
        DagsterMetadataSink, {"preview_rows": 3})  # fmt: skip
    asset = to_asset(env.pipeline, "squares", group_name="dataflow")
    Definitions(assets=[asset])  # loads in a code location
    result = materialize([asset])
    metadata = result.asset_materializations_for_node("squares")[0].metadata
    assert metadata["records_out"].value == 7
    rows = metadata["operators"].value.records
    assert [(r.data["operator"], r.data["in"], r.data["out"]) for r in rows] == [
        ("IterableSource", 0, 7), ("<lambda>", 7, 7), ("DagsterMetadataSink", 7, 7)]  # fmt: skip
    preview = metadata["DagsterMetadataSink/preview"].value.records
    assert [r.data["square"] for r in preview] == ["0", "1", "4"]
