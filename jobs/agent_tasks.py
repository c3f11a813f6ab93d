"""streaming_agent_job: one run per agent task, every stream message stored as it happens."""

from dagster import Config, Failure, OpExecutionContext, RetryPolicy, RetryRequested, job, op

from sage_platform.agent.tasks import TaskStore, run_task
from sage_platform.resources import SageResource

MAX_RETRIES = 2


class AgentTaskConfig(Config):
    task_id: str


@op(
    pool="llm",
    retry_policy=RetryPolicy(max_retries=MAX_RETRIES, delay=2),
    description="Run the agent loop for one task; its messages go to agent_events as they are published.",
)
def run_agent_task(context: OpExecutionContext, config: AgentTaskConfig, sage: SageResource) -> None:
    platform = sage.platform
    last_attempt = context.retry_number >= MAX_RETRIES
    finished = False
    try:
        outcome = run_task(platform, config.task_id, context.run_id)
        finished = True
    finally:
        # An exception on the last attempt must not leave the task "running" with its followers waiting.
        # (A killed process skips this; agent_task_sensor reaps tasks whose run has ended.)
        if not finished and last_attempt:
            TaskStore(platform.db).finish(
                config.task_id, context.run_id, "failed", "the task's run failed unexpectedly"
            )
    context.add_output_metadata(
        {
            "task_id": config.task_id,
            "status": outcome.status,
            "attempt": outcome.attempt or 0,
            "events": outcome.events,
            "error": outcome.error or "",
        }  # fmt: skip
    )
    if outcome.status != "failed":
        return
    if not last_attempt:
        raise RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=2) from RuntimeError(outcome.error)
    TaskStore(platform.db).finish(config.task_id, context.run_id, "failed", outcome.error)
    raise Failure(description=f"agent task {config.task_id} failed: {outcome.error}")


@job(description="Runs one long agent task submitted with POST /api/tasks or `sage task submit`.")
def streaming_agent_job() -> None:
    run_agent_task()
