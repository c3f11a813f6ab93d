"""run_failure_alerts: every failed run becomes a row in ``alerts`` and, if set, a webhook POST."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from sage_platform.ops.alerts import record_failure
from sage_platform.resources import SageResource


@run_failure_sensor(
    name="run_failure_alerts",
    monitor_all_code_locations=True,
    default_status=DefaultSensorStatus.RUNNING,
    description="Writes each failed run to the alerts table and POSTs it to SAGE_ALERT_WEBHOOK_URL.",
)
def run_failure_alerts(context: RunFailureSensorContext, sage: SageResource) -> None:
    platform = sage.platform
    run = context.dagster_run
    error = context.failure_event.message or "the run failed"
    alert = record_failure(
        platform.db, platform.settings, run_id=run.run_id, job_name=run.job_name, error=error,
        tags=dict(run.tags),
    )  # fmt: skip
    context.log.info(f"alert {alert.alert_id} for run {run.run_id} ({run.job_name}): webhook {alert.webhook}")
