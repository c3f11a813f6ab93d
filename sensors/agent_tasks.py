"""agent_task_sensor: one streaming_agent_job run per pending task (run_key = task id), and the reaper of
tasks whose run ended without finishing them (a killed process never reaches its ``finally``)."""

import time

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from sage_platform.agent.tasks import TaskStore
from sage_platform.jobs.agent_tasks import streaming_agent_job
from sage_platform.resources import SageResource


@sensor(
    job=streaming_agent_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches a run for each pending agent task; the task id is the run key, so once each.",
)
def agent_task_sensor(context: SensorEvaluationContext, sage: SageResource):  # type: ignore[no-untyped-def]
    # The process's cached platform: one pool and one migration check, not one per tick.
    tasks = TaskStore(sage.platform.db)
    for reaped in reap_orphaned_tasks(tasks, context.instance):
        context.log.warning(f"task {reaped} failed: its run ended without finishing it")
    pending = tasks.pending()
    if not pending:
        yield SkipReason("no pending agent tasks")
        return
    for task in pending:
        yield RunRequest(
            run_key=task["task_id"],
            run_config={"ops": {"run_agent_task": {"config": {"task_id": task["task_id"]}}}},
            tags={"sage/task": task["task_id"], "sage/user": task["user_id"], "sage/session": task["session_id"]},
        )


REAP_GRACE_S = 300.0  # a run whose worker crashed is retried (run_retries): give the retry time to claim it
_ENDED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def reap_orphaned_tasks(tasks: TaskStore, instance: DagsterInstance, grace_s: float = REAP_GRACE_S) -> list[str]:
    """Fail each running task whose Dagster run is gone, or ended over ``grace_s`` ago; their ids."""
    reaped = []
    for task in tasks.running():
        record = instance.get_run_record_by_id(task["dagster_run_id"]) if task["dagster_run_id"] else None
        if record is not None:
            ended = record.end_time or record.update_timestamp.timestamp()
            if record.dagster_run.status not in _ENDED or time.time() - ended < grace_s:
                continue
            reason = f"its Dagster run {task['dagster_run_id']} ended ({record.dagster_run.status.value}) without finishing it"
        else:
            reason = f"its Dagster run {task['dagster_run_id']} no longer exists"
        if tasks.finish(task["task_id"], task["dagster_run_id"], "failed", reason):
            reaped.append(task["task_id"])
    return reaped
