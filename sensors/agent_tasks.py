"""agent_task_sensor: one streaming_agent_job run per pending task (run_key = task id)."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from jobs.agent_tasks import streaming_agent_job
from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.server.tasks import TaskStore


@sensor(
    job=streaming_agent_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches a run for each pending agent task; the task id is the run key, so once each.",
)
def agent_task_sensor(context: SensorEvaluationContext):  # type: ignore[no-untyped-def]
    pending = TaskStore(Database.from_settings(Settings())).pending()
    if not pending:
        yield SkipReason("no pending agent tasks")
        return
    for task in pending:
        yield RunRequest(
            run_key=task["task_id"],
            run_config={"ops": {"run_agent_task": {"config": {"task_id": task["task_id"]}}}},
            tags={"sage/task": task["task_id"], "sage/user": task["user_id"], "sage/session": task["session_id"]},
        )
