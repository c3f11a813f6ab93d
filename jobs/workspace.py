"""workspace_retention_job: delete workspace files older than SAGE_WORKSPACE_RETENTION_DAYS."""

from dagster import OpExecutionContext, job, op

from sage_platform.resources import SageResource
from sage_platform.workspace import WorkspaceFiles, file_store


@op(description="Delete workspace files (rows and bytes) past SAGE_WORKSPACE_RETENTION_DAYS; 0 keeps them all.")
def expire_workspace_files(context: OpExecutionContext, sage: SageResource) -> None:
    platform = sage.platform
    days = platform.settings.workspace_retention_days
    files = WorkspaceFiles(platform.db, file_store(platform.settings))
    deleted = files.expire(days) if days > 0 else 0
    context.add_output_metadata({"retention_days": days, "deleted_files": deleted, "store": files.store.description})


@job(description="Daily: workspace files older than the retention period are deleted.")
def workspace_retention_job() -> None:
    expire_workspace_files()
