"""Sensors and schedules. The spine runs on demand (``sage materialize`` or the UI); the inbox,
agent-task and failure sensors and the backup/rebuild/evaluation schedules join here."""

from dagster import ScheduleDefinition, SensorDefinition

schedules: list[ScheduleDefinition] = []
sensors: list[SensorDefinition] = []

__all__ = ["schedules", "sensors"]
