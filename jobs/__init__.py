"""Jobs over the asset graph."""

from dagster import AssetSelection, define_asset_job

rag_job = define_asset_job(
    "rag_job",
    selection=AssetSelection.groups("rag"),
    description="The whole RAG graph: ingest, chunk, embed, index, answer and evaluate.",
)

inbox_job = define_asset_job(
    "inbox_job",
    selection=AssetSelection.assets(
        "raw_documents", "document_chunks", "chunk_embeddings", "pgvector_index", "es_index"
    ),
    description=(
        "New or changed inbox files: staged into the corpus, ingested, chunked, embedded and indexed. "
        "Answers and the evaluation follow by declarative automation, not in this run."
    ),
)

index_rebuild_job = define_asset_job(
    "index_rebuild_job",
    selection=AssetSelection.assets("pgvector_index", "es_index"),
    config={"ops": {name: {"config": {"rebuild": True}} for name in ("pgvector_index", "es_index")}},
    description=(
        "Zero-downtime rebuild: a new index version beside the live one, checked (row count, recall@10 "
        "against exact search), then readers switch atomically; the previous version is kept for rollback."
    ),
)

from sage_platform.jobs.agent_tasks import streaming_agent_job  # noqa: E402 (after the asset jobs they sit beside)
from sage_platform.jobs.backup import backup_job  # noqa: E402
from sage_platform.jobs.workspace import workspace_retention_job  # noqa: E402

jobs = (rag_job, inbox_job, index_rebuild_job, backup_job, streaming_agent_job, workspace_retention_job)

__all__ = [
    "backup_job",
    "inbox_job",
    "index_rebuild_job",
    "jobs",
    "rag_job",
    "streaming_agent_job",
    "workspace_retention_job",
]
