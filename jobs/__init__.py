"""Jobs over the asset graph."""

from dagster import AssetSelection, define_asset_job

rag_job = define_asset_job(
    "rag_job",
    selection=AssetSelection.groups("rag"),
    description="The whole RAG graph: ingest, chunk, embed, index, answer and evaluate.",
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

jobs = [rag_job, index_rebuild_job]

__all__ = ["index_rebuild_job", "jobs", "rag_job"]
