"""backup_job: a verified backup of the platform database, then retention."""

from dagster import OpExecutionContext, job, op

from sage_platform.assets._metadata import table
from sage_platform.ops.backup import apply_retention, backup_now
from sage_platform.resources import SageResource


@op(pool="database", description="pg_dump -Fc, restore into a scratch database, verify table by table, store.")
def backup_database(context: OpExecutionContext, sage: SageResource) -> None:
    platform = sage.platform
    result = backup_now(platform.settings, platform.db)
    deleted = apply_retention(platform.settings)
    context.add_output_metadata(
        {
            "location": result.location,
            "size_mb": round(result.size_bytes / 2**20, 2),
            "dump_seconds": round(result.dump_seconds, 2),
            "verify_seconds": round(result.verify_seconds, 2),
            "store_seconds": round(result.store_seconds, 2),
            "tables_verified": len(result.tables),
            "verification": table(
                [("table", "string"), ("rows", "int"), ("restored", "int"), ("match", "bool")],
                [(t["table"], t["rows"], t["restored_rows"], t["match"]) for t in result.tables],
            ),
            "deleted_by_retention": deleted,
        }
    )


@job(description="Nightly: a verified pg_dump of the platform database, kept by the retention rule.")
def backup_job() -> None:
    backup_database()
