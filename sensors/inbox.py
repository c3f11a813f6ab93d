"""inbox_sensor: new or changed files in SAGE_INBOX_DIR launch one ``inbox_job`` run per tick.

The tick only scans (by path and content hash, with the cursor remembering what was handled) and
records unreadable files; the run stages the readable ones into the corpus and ingests them.
"""

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from sage_platform.hashing import text_hash
from sage_platform.ingest.isolation import ParserLimits
from sage_platform.jobs import inbox_job
from sage_platform.ops.inbox import record_unreadable, scan_inbox
from sage_platform.resources import SageResource


@sensor(
    job=inbox_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="One inbox_job run per tick for every new or changed inbox file; run key = the files and hashes.",
)
def inbox_sensor(context: SensorEvaluationContext, sage: SageResource) -> SensorResult | SkipReason:
    settings = sage.platform.settings
    if settings.inbox_dir is None:
        return SkipReason("SAGE_INBOX_DIR is not set")
    known: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    scan = scan_inbox(settings.inbox_dir, known, settings.max_document_bytes, ParserLimits.from_settings(settings))
    if scan.unreadable:
        record_unreadable(sage.platform.db, scan.unreadable)
    for item in (*scan.readable, *scan.unreadable):
        known[item.path] = item.content_hash  # handled: never launched or reported twice for these bytes
    cursor = json.dumps(known, sort_keys=True)
    if scan.readable:
        files = {item.path: item.content_hash for item in scan.readable}
        request = RunRequest(
            run_key=text_hash(json.dumps(sorted(files.items()))),
            run_config={"ops": {"raw_documents": {"config": {"inbox_files": files}}}},
            tags={"sage/inbox_files": str(len(files))},
        )
        return SensorResult(run_requests=[request], cursor=cursor)
    unreadable = "; ".join(f"{i.path} ({i.reason})" for i in scan.unreadable)
    context.update_cursor(cursor)
    return SkipReason(f"unreadable, recorded in rejected_documents: {unreadable}" if unreadable
                      else f"no new or changed files in {settings.inbox_dir}")  # fmt: skip
