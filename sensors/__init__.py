"""Sensors and schedules: the platform runs itself."""

from dagster import DefaultScheduleStatus, DefaultSensorStatus, ScheduleDefinition, SensorDefinition

from jobs import backup_job, index_rebuild_job, rag_job
from sensors.agent_tasks import agent_task_sensor
from sensors.failures import run_failure_alerts
from sensors.inbox import inbox_sensor

weekly_index_rebuild = ScheduleDefinition(
    name="weekly_index_rebuild",
    job=index_rebuild_job,
    cron_schedule="0 3 * * 0",  # Sundays 03:00
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Rebuild the pgvector (and Elasticsearch) index beside the live one and switch after checks.",
)
nightly_backup = ScheduleDefinition(
    name="nightly_backup",
    job=backup_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="A verified backup of the platform database every night; retention keeps 7 daily and 4 weekly.",
)
daily_evaluation = ScheduleDefinition(
    name="daily_evaluation",
    job=rag_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The whole graph once a day: ingest what changed, re-evaluate, and gate on regressions.",
)

schedules: list[ScheduleDefinition] = [nightly_backup, weekly_index_rebuild, daily_evaluation]
sensors: list[SensorDefinition] = [agent_task_sensor, inbox_sensor, run_failure_alerts]
assert run_failure_alerts.default_status == DefaultSensorStatus.RUNNING

__all__ = [
    "agent_task_sensor",
    "daily_evaluation",
    "inbox_sensor",
    "nightly_backup",
    "run_failure_alerts",
    "schedules",
    "sensors",
    "weekly_index_rebuild",
]
