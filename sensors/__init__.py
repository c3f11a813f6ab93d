"""Sensors and schedules: the platform runs itself."""

from typing import Any

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ScheduleDefinition,
    SensorDefinition,
)

from sage_platform.jobs import backup_job, index_rebuild_job, rag_job, workspace_retention_job
from sage_platform.sensors.agent_tasks import agent_task_sensor
from sage_platform.sensors.failures import run_failure_alerts
from sage_platform.sensors.inbox import inbox_sensor


def _schedule(name: str, job: Any, cron: str, description: str) -> ScheduleDefinition:
    """Every schedule: UTC, running from the start."""
    return ScheduleDefinition(
        name=name, job=job, cron_schedule=cron, execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING, description=description,
    )  # fmt: skip


weekly_index_rebuild = _schedule(
    "weekly_index_rebuild", index_rebuild_job, "0 3 * * 0",  # Sundays 03:00
    "Rebuild the pgvector (and Elasticsearch) index beside the live one and switch after checks.",
)  # fmt: skip
nightly_backup = _schedule(
    "nightly_backup", backup_job, "0 2 * * *",
    "A verified backup of the platform database every night; retention keeps 7 daily and 4 weekly.",
)  # fmt: skip
daily_evaluation = _schedule(
    "daily_evaluation", rag_job, "0 4 * * *",
    "The whole graph once a day: ingest what changed, re-evaluate, and gate on regressions.",
)  # fmt: skip

# Evaluates the answers' and the report's automation conditions; running from the start (Dagster's
# default sensor would have to be switched on in the UI first).
evaluation_automation = AutomationConditionSensorDefinition(
    "evaluation_automation",
    target=AssetSelection.assets("rag_answers", "evaluation_report"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Answers and the evaluation report follow a changed index (inbox runs, rebuilds).",
)

daily_workspace_retention = _schedule(
    "daily_workspace_retention", workspace_retention_job, "30 2 * * *",
    "Delete workspace files older than SAGE_WORKSPACE_RETENTION_DAYS (0: keep them).",
)  # fmt: skip

schedules: list[ScheduleDefinition] = [
    nightly_backup,
    weekly_index_rebuild,
    daily_evaluation,
    daily_workspace_retention,
]
sensors: list[SensorDefinition] = [agent_task_sensor, inbox_sensor, run_failure_alerts, evaluation_automation]
assert run_failure_alerts.default_status == DefaultSensorStatus.RUNNING

__all__ = [
    "agent_task_sensor",
    "daily_evaluation",
    "daily_workspace_retention",
    "evaluation_automation",
    "inbox_sensor",
    "nightly_backup",
    "run_failure_alerts",
    "schedules",
    "sensors",
    "weekly_index_rebuild",
]
