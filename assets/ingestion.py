"""Ingestion assets: the corpus folder into ``documents``, documents into ``chunks``."""

import time

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from sage_platform.assets._metadata import stored_table, table
from sage_platform.chunking import chunk_documents
from sage_platform.config import Settings
from sage_platform.fingerprints import code_versions
from sage_platform.ingest import ingest_corpus
from sage_platform.ingest.isolation import ParserLimits
from sage_platform.ops.inbox import STAGED, stage_files
from sage_platform.resources import SageResource

CODE_VERSIONS = code_versions(Settings())


class IngestConfig(Config):
    """``inbox_files`` (path → content hash, set by ``inbox_sensor``): staged from SAGE_INBOX_DIR under
    SAGE_DATA_DIR/inbox by this run, before it reads the corpus and the staged files."""

    inbox_files: dict[str, str] = {}


@asset(group_name="rag", kinds={"postgres"})
def raw_documents(context: AssetExecutionContext, sage: SageResource, config: IngestConfig) -> MaterializeResult[None]:
    """Every supported file under SAGE_CORPUS_DIR, ingested incrementally by content hash.

    Bad files land in ``rejected_documents`` with the reason; the rest is ingested.
    """
    platform = sage.platform
    settings = platform.settings
    began = time.perf_counter()
    staged: list[str] = []
    if config.inbox_files:
        if settings.inbox_dir is None:
            raise ValueError("this run stages inbox files, but SAGE_INBOX_DIR is not set")
        staged, skipped = stage_files(config.inbox_files, settings.inbox_dir, settings.inbox_staging_dir,
                                      settings.max_document_bytes)  # fmt: skip
        context.log.info(f"staged {len(staged)} inbox files into {settings.inbox_staging_dir}")
        for path, reason in skipped:
            context.log.warning(f"inbox file not staged: {path}: {reason}")

    def progress(done: int, path: str) -> None:
        if done % 100 == 0:
            context.log.info(f"read {done} files (last: {path})")

    stats = ingest_corpus(
        platform.db,
        settings.corpus_dir,
        max_document_bytes=settings.max_document_bytes,
        progress=progress,
        max_delete_fraction=settings.max_delete_fraction,
        parser_limits=ParserLimits.from_settings(settings),
        extra_roots={STAGED: settings.inbox_staging_dir},
    )
    for location, reason in stats.rejected:
        context.log.warning(f"rejected {location}: {reason}")
    with platform.db.connect() as conn:
        total = conn.execute("SELECT count(*) FROM documents").fetchone()
        preview = conn.execute(
            "SELECT doc_id, title, size_bytes FROM documents ORDER BY updated_at DESC, doc_id LIMIT 10"
        ).fetchall()
        standard = stored_table(conn, "documents", rows=int(total[0]) if total else 0)
    return MaterializeResult(
        metadata={
            **standard,
            "corpus_dir": MetadataValue.path(str(settings.corpus_dir)),
            "inbox_files_staged": len(staged),
            "files_seen": stats.files_seen,
            "files_unchanged": stats.files_unchanged,
            "files_ignored": stats.files_ignored,
            "added": stats.added,
            "updated": stats.updated,
            "deleted": stats.deleted,
            "rejected": len(stats.rejected),
            "rejects": table([("path", "string"), ("reason", "string")], stats.rejected[:20]),
            "bytes_read": stats.bytes_read,
            "duration_s": round(time.perf_counter() - began, 3),
            "preview": table([("doc_id", "string"), ("title", "string"), ("bytes", "int")], preview),
        }
    )


@asset(group_name="rag", kinds={"postgres"}, deps=[raw_documents], code_version=CODE_VERSIONS["document_chunks"])
def document_chunks(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult[None]:
    """Overlapping token windows, cut at paragraph and content-defined boundaries.

    Only documents whose content or chunking settings changed are split again.
    """
    platform = sage.platform
    began = time.perf_counter()
    stats = chunk_documents(
        platform.db,
        platform.splitter,
        default_language=platform.settings.text_search_language,
        progress=lambda done, total: context.log.info(f"chunked {done}/{total} documents"),
    )
    with platform.db.connect() as conn:
        preview = conn.execute(
            "SELECT doc_id, position, token_count, text FROM chunks ORDER BY doc_id, position LIMIT 8"
        ).fetchall()
        standard = stored_table(conn, "chunks", rows=stats.chunks_total)
    return MaterializeResult(
        metadata={
            **standard,
            "chunker": platform.splitter.fingerprint,
            "documents_chunked": stats.documents_chunked,
            "chunks_written": stats.chunks_written,
            "chunks_removed": stats.chunks_removed,
            "mean_tokens": round(stats.tokens_total / stats.chunks_total, 1) if stats.chunks_total else 0.0,
            "duration_s": round(time.perf_counter() - began, 3),
            "preview": table(
                [("doc_id", "string"), ("position", "int"), ("tokens", "int"), ("text", "string")], preview
            ),
        }
    )
