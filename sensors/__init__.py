"""Sensors and schedules."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, SensorDefinition

from jobs import index_rebuild_job

weekly_index_rebuild = ScheduleDefinition(
    name="weekly_index_rebuild",
    job=index_rebuild_job,
    cron_schedule="0 3 * * 0",  # Sundays 03:00
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Rebuild the pgvector (and Elasticsearch) index beside the live one and switch after checks.",
)

schedules: list[ScheduleDefinition] = [weekly_index_rebuild]
sensors: list[SensorDefinition] = []

__all__ = ["schedules", "sensors", "weekly_index_rebuild"]
