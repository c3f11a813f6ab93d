"""Jobs over the asset graph."""

from dagster import AssetSelection, define_asset_job

rag_job = define_asset_job(
    "rag_job",
    selection=AssetSelection.groups("rag"),
    description="The whole RAG graph: ingest, chunk, embed, index, answer and evaluate.",
)

jobs = [rag_job]

__all__ = ["jobs", "rag_job"]
