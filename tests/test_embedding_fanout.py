"""``chunk_embeddings`` fans out over shards: under the multiprocess executor each shard embeds in a step
process of its own, the plan crossing processes through the database; a shard killed mid-way is finished
by the next run with no duplicate and no gap."""

import os
import subprocess
import sys
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.runtime import prepare_dagster_home
from tests.conftest import write_pubmedqa


def _materialize(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "WARNING",
         "--select", "raw_documents,document_chunks,chunk_embeddings"],
        env={**os.environ, **env, **extra}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _embedding_metadata(instance: DagsterInstance) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(AssetKey("chunk_embeddings"))
    assert event is not None and event.asset_materialization is not None
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _vector_rows(db: Database) -> tuple[int, int, int]:
    """(vectors, distinct vector keys, distinct chunk texts)."""
    with db.connect() as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM embeddings), (SELECT count(DISTINCT (model, text_hash)) FROM embeddings),
                      (SELECT count(DISTINCT text_hash) FROM chunks)"""
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_shards_embed_in_their_own_processes_and_a_killed_shard_is_finished_by_the_next_run(
    env: dict[str, str], settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 80, as_files=True)
    env = {
        **env,
        "SAGE_DAGSTER_DATABASE_URL": env["SAGE_DATABASE_URL"],
        "SAGE_DAGSTER_EXECUTOR": "multiprocess",
        "SAGE_EMBEDDING_SHARDS": "2",
        "SAGE_EMBEDDING_COMMIT_EVERY": "16",
    }
    # Each shard's process dies after its second commit of vectors.
    killed = _materialize(env, SAGE_CRASH_AT="chunk_embeddings.batch:2")
    assert killed.returncode != 0, killed.stderr[-2000:]
    vectors, keys, distinct = _vector_rows(db)
    assert vectors == keys == 2 * 2 * 16 < distinct  # both shards committed two groups, then died

    finished = _materialize(env)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert _vector_rows(db) == (distinct, distinct, distinct)  # every text once: no duplicate, no gap

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    prepare_dagster_home(Settings())
    with DagsterInstance.get() as instance:
        metadata = _embedding_metadata(instance)
        runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        steps = {stat.step_key for stat in instance.get_run_step_stats(runs[0].run_id)}
    assert metadata["embedded"] == distinct - 2 * 2 * 16 and metadata["reused"] == 2 * 2 * 16
    assert metadata["shards"] == 2 and metadata["shard_processes"] == 2
    assert metadata["duration_s"] >= metadata["slowest_shard_s"] > 0
    pids = {record.data["pid"] for record in metadata["per_shard"].records}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {"chunk_embeddings.embed_chunk_shard[0]", "chunk_embeddings.embed_chunk_shard[1]"} <= steps
    with db.connect() as conn:  # the plan's values were kept for a re-execution, in the database
        assert (
            conn.execute("SELECT count(*) FROM dagster_step_values WHERE run_id = %s", (runs[0].run_id,)).fetchone()[0]
            >= 2
        )  # type: ignore[index]
