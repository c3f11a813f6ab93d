"""inbox_sensor: new or changed files in SAGE_INBOX_DIR launch rag_job, once per (path, content hash)."""

import json

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from sage_platform.ingest import Rejected
from sage_platform.ingest.isolation import ParserLimits
from sage_platform.jobs import rag_job
from sage_platform.ops.inbox import record_unreadable, scan_inbox, stage
from sage_platform.package_files import SAMPLE_CORPUS_DIR
from sage_platform.resources import SageResource


@sensor(
    job=rag_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Stages new or changed inbox files into the corpus and runs the graph; run key = path + hash.",
)
def inbox_sensor(context: SensorEvaluationContext, sage: SageResource) -> SensorResult | SkipReason:
    settings = sage.platform.settings
    if settings.inbox_dir is None:
        return SkipReason("SAGE_INBOX_DIR is not set")
    if settings.corpus_dir.resolve() == SAMPLE_CORPUS_DIR.resolve():
        return SkipReason("SAGE_INBOX_DIR needs SAGE_CORPUS_DIR set to a folder of yours: inbox files are staged "
                          "into the corpus, and the packaged sample corpus is read-only")  # fmt: skip
    known: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    scan = scan_inbox(settings.inbox_dir, known, settings.max_document_bytes, ParserLimits.from_settings(settings))
    if scan.unreadable:
        record_unreadable(sage.platform.db, scan.unreadable)
    requests, staged = [], []
    for item in scan.readable:
        try:
            stage(item, settings.inbox_dir, settings.corpus_dir, settings.max_document_bytes)
        except Rejected as error:  # changed or swapped since the scan: looked at again on the next tick
            context.log.warning(f"not staged: {error}")
            continue
        staged.append(item)
        requests.append(RunRequest(run_key=item.run_key, tags={"sage/inbox_file": item.path[:200],
                                                               "sage/content_hash": item.content_hash}))  # fmt: skip
    for item in (*staged, *scan.unreadable):
        known[item.path] = item.content_hash  # handled: never launched or reported twice for these bytes
    cursor = json.dumps(known, sort_keys=True)
    if requests:
        return SensorResult(run_requests=requests, cursor=cursor)
    unreadable = "; ".join(f"{i.path} ({i.reason})" for i in scan.unreadable)
    context.update_cursor(cursor)
    return SkipReason(f"unreadable, recorded in rejected_documents: {unreadable}" if unreadable
                      else f"no new or changed files in {settings.inbox_dir}")  # fmt: skip
