"""backup_job in a real Dagster run; the failure sensor with a webhook receiver on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from dagster import DagsterInstance, build_run_status_sensor_context, job, op

from sage_platform.db import Database
from sage_platform.jobs import backup_job
from sage_platform.resources import SageResource
from sage_platform.sensors import run_failure_alerts
from tests._http import serve


def test_backup_job_records_size_duration_and_verification(settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    result = backup_job.execute_in_process(resources={"sage": SageResource()}, instance=DagsterInstance.ephemeral())
    assert result.success
    output = next(
        e.event_specific_data.metadata for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and e.event_specific_data.metadata  # type: ignore[union-attr]
    )  # fmt: skip
    assert output["size_mb"].value > 0 and output["tables_verified"].value >= 5
    verified = {record.data["table"]: record.data for record in output["verification"].value.records}
    assert verified["documents"]["match"] and all(row["match"] for row in verified.values())
    assert all(row["rows"] == row["restored"] for row in verified.values()) and len(verified) >= 5


@op
def explode() -> None:
    raise RuntimeError("the index is on fire")


@job
def broken_job() -> None:
    explode()


def test_failed_runs_become_alerts_and_one_webhook_post_each(settings, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    posts: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()
            arrived.set()

    instance = DagsterInstance.ephemeral()
    result = broken_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    with serve(Receiver) as url:
        monkeypatch.setenv("SAGE_ALERT_WEBHOOK_URL", url + "/hook")
        for _ in range(2):  # the sensor may see the same failure again: one alert, one POST
            context = build_run_status_sensor_context(
                sensor_name="run_failure_alerts", dagster_instance=instance,
                dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
                resources={"sage": SageResource()},
            ).for_run_failure()  # fmt: skip
            run_failure_alerts(context)
        assert arrived.wait(5)
    assert len(posts) == 1
    assert posts[0]["type"] == "sage.run_failure" and posts[0]["job_name"] == "broken_job"
    assert posts[0]["run_id"] == result.run_id and "explode" in posts[0]["error"]
    with db.connect() as conn:
        rows = conn.execute("SELECT run_id, job_name, webhook FROM alerts").fetchall()
    assert rows == [(result.run_id, "broken_job", "delivered")]


def test_an_unreachable_webhook_is_recorded_not_raised(settings, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.ops.alerts import record_failure
    from tests.mcp_tool_server import free_port

    monkeypatch.setenv("SAGE_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hook")
    from sage_platform.config import Settings

    alert = record_failure(db, Settings(), run_id="r1", job_name="rag_job", error="boom", tags={})
    assert alert.new and alert.webhook is not None and alert.webhook.startswith("failed: ")


def test_workspace_retention_deletes_only_files_past_the_period(settings, db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.config import Settings
    from sage_platform.jobs import workspace_retention_job
    from sage_platform.sensors import daily_workspace_retention
    from sage_platform.workspace import WorkspaceFiles, file_store

    monkeypatch.setenv("SAGE_WORKSPACE_RETENTION_DAYS", "2")
    files = WorkspaceFiles(db, file_store(Settings()))
    old = files.add("ada", "s1", "old.txt", b"from last week")
    new = files.add("ada", "s1", "new.txt", b"from today")
    with db.pool.connection() as conn:
        conn.execute("UPDATE workspace_files SET created_at = now() - interval '3 days' WHERE file_id = %s",
                     (old.file_id,))  # fmt: skip
    result = workspace_retention_job.execute_in_process(resources={"sage": SageResource()},
                                                        instance=DagsterInstance.ephemeral())  # fmt: skip
    assert result.success
    output = next(
        e.event_specific_data.metadata for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and e.event_specific_data.metadata  # type: ignore[union-attr]
    )  # fmt: skip
    assert (output["retention_days"].value, output["deleted_files"].value) == (2, 1)
    assert [f.name for f in files.listing("ada", "s1")] == ["new.txt"]
    assert files.read("ada", new.file_id)[1] == b"from today"
    with pytest.raises(FileNotFoundError):  # the expired file's bytes are gone too
        file_store(Settings()).get(old.file_id)
    assert daily_workspace_retention.job_name == "workspace_retention_job"
