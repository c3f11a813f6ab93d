"""Indexing assets: the pgvector tables and Elasticsearch, from the content-addressed embeddings."""

from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, AssetObservation, Config, MaterializeResult, asset

from sage_platform.assets.embedding import chunk_embeddings
from sage_platform.assets.ingestion import CODE_VERSIONS
from sage_platform.index import IndexStats, sync_pgvector_index
from sage_platform.index.pgvector import rebuild_pgvector_index
from sage_platform.resources import SageResource


class IndexConfig(Config):
    """``rebuild: true`` builds a new version beside the live one and switches after checks
    (``index_rebuild_job`` sets it); otherwise only the difference is applied."""

    rebuild: bool = False


def _index_metadata(stats: IndexStats) -> dict[str, Any]:
    return {
        "mode": stats.mode,
        "compared": "every chunk" if stats.compared is None else f"{stats.compared} noted chunks",
        "vector_index": str(stats.checks.get("vector_index", "unchanged")),
        "version": stats.version,
        "dagster/row_count": stats.rows,
        "inserted": stats.inserted,
        "deleted": stats.deleted,
        "load_rows_per_s": round(stats.load_rows_per_second, 1),
        "hnsw_build_s": round(stats.hnsw_seconds, 3),
        "build_time_s": round(stats.total_seconds, 3),
        **{f"check_{key}": value for key, value in stats.checks.items() if isinstance(value, int | float)},
    }


@asset(
    group_name="rag",
    kinds={"pgvector"},
    deps=[chunk_embeddings],
    pool="database",
    code_version=CODE_VERSIONS["pgvector_index"],
)
def pgvector_index(context: AssetExecutionContext, sage: SageResource, config: IndexConfig) -> MaterializeResult[None]:
    """Versioned pgvector tables (HNSW cosine + full-text GIN) behind the ``chunk_index`` view.

    A rebuild, a new model or a first build makes a new version, checked (row count, recall@10
    against exact search) before readers switch to it; otherwise the difference is applied.
    """
    platform = sage.platform
    embedder = platform.embedder
    model, dim, checks = embedder.model_name, embedder.dimension, platform.index_checks
    if config.rebuild:
        stats = rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=checks)
    else:
        stats = sync_pgvector_index(platform.db, model=model, dim=dim, checks=checks)
    context.log.info(f"{stats.mode}: +{stats.inserted} -{stats.deleted} rows, {stats.rows} in version {stats.version}")
    return MaterializeResult(metadata=_index_metadata(stats))


@asset(
    group_name="rag",
    kinds={"elasticsearch"},
    deps=[chunk_embeddings],
    output_required=False,
    pool="database",
    code_version=CODE_VERSIONS["es_index"],
)
def es_index(
    context: AssetExecutionContext, sage: SageResource, config: IndexConfig
) -> Iterator[MaterializeResult[None]]:
    """The chunks in Elasticsearch (``sage-chunks-<version>`` behind the alias ``sage-chunks``).

    Skipped, never failed, when SAGE_ELASTICSEARCH_URL is unset.
    """
    platform = sage.platform
    if not platform.settings.elasticsearch_configured:
        reason = "Elasticsearch not configured (set SAGE_ELASTICSEARCH_URL)"
        context.log.info(f"es_index skipped: {reason}")
        context.log_event(AssetObservation(asset_key=context.asset_key, metadata={"status": f"skipped: {reason}"}))
        return
    from sage_platform.index.elasticsearch import ElasticsearchIndexer

    indexer = ElasticsearchIndexer.from_settings(platform.settings, platform.db)
    embedder = platform.embedder
    run = indexer.rebuild if config.rebuild else indexer.sync
    stats = run(model=embedder.model_name, dim=embedder.dimension, checks=platform.index_checks)
    yield MaterializeResult(metadata=_index_metadata(stats))
