"""Indexing assets: content-addressed embeddings, then the pgvector HNSW table."""

import time

from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.ingestion import document_chunks
from sage_platform.embeddings import embed_missing_chunks
from sage_platform.index import sync_pgvector_index
from sage_platform.resources import SageResource


@asset(group_name="rag", kinds={"pytorch", "postgres"}, deps=[document_chunks])
def chunk_embeddings(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult:
    """One vector per (model, chunk text). Only texts never embedded with this model are embedded."""
    platform = sage.platform
    embedder = platform.embedder
    began = time.perf_counter()

    def progress(done: int, total: int, rate: float) -> None:
        eta = (total - done) / rate if rate else 0.0
        context.log.info(f"embedded {done}/{total} chunk texts ({rate:.1f}/s, about {eta:.0f}s left)")

    stats = embed_missing_chunks(
        platform.db, embedder, texts_per_commit=platform.settings.embedding_commit_every, progress=progress
    )
    return MaterializeResult(
        metadata={
            "model": embedder.model_name,
            "dimension": embedder.dimension,
            "batch_size": embedder.batch_size,
            "chunks": stats.chunks,
            "embedded": stats.embedded,
            "reused": stats.reused,
            "retired_other_models": stats.retired,
            "dropped_unused": stats.orphans_dropped,
            "chunks_per_second": round(stats.chunks_per_second, 2),
            "embedding_s": round(stats.seconds_embedding, 3),
            "writing_s": round(stats.seconds_writing, 3),
            "duration_s": round(time.perf_counter() - began, 3),
        }
    )


@asset(group_name="rag", kinds={"pgvector"}, deps=[chunk_embeddings])
def pgvector_index(context: AssetExecutionContext, sage: SageResource) -> MaterializeResult:
    """The ``chunk_index`` table with an HNSW cosine index; rebuilt when the model changes."""
    platform = sage.platform
    embedder = platform.embedder
    stats = sync_pgvector_index(platform.db, model=embedder.model_name, dim=embedder.dimension)
    context.log.info(f"{stats.mode} sync: +{stats.inserted} -{stats.deleted} rows, {stats.rows} in the index")
    return MaterializeResult(
        metadata={
            "mode": stats.mode,
            "row_count": stats.rows,
            "inserted": stats.inserted,
            "deleted": stats.deleted,
            "load_rows_per_s": round(stats.load_rows_per_second, 1),
            "hnsw_build_s": round(stats.hnsw_seconds, 3),
            "build_time_s": round(stats.total_seconds, 3),
        }
    )
