"""agent_task_sensor: one streaming_agent_job run per pending task (run_key = task id)."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from sage_platform.jobs.agent_tasks import streaming_agent_job
from sage_platform.resources import SageResource
from sage_platform.server.tasks import TaskStore


@sensor(
    job=streaming_agent_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches a run for each pending agent task; the task id is the run key, so once each.",
)
def agent_task_sensor(context: SensorEvaluationContext, sage: SageResource):  # type: ignore[no-untyped-def]
    # The process's cached platform: one pool and one migration check, not one per tick.
    pending = TaskStore(sage.platform.db).pending()
    if not pending:
        yield SkipReason("no pending agent tasks")
        return
    for task in pending:
        yield RunRequest(
            run_key=task["task_id"],
            run_config={"ops": {"run_agent_task": {"config": {"task_id": task["task_id"]}}}},
            tags={"sage/task": task["task_id"], "sage/user": task["user_id"], "sage/session": task["session_id"]},
        )
