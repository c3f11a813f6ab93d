"""Search indexes: versioned pgvector tables (HNSW + full text, with a BM25 lexicon), Elasticsearch."""

from sage_platform.index.pgvector import (
    LIVE_VIEW,
    IndexCheckFailed,
    IndexChecks,
    IndexNotReady,
    IndexStats,
    measure_recall,
    rebuild_pgvector_index,
    rollback_pgvector_index,
    sync_pgvector_index,
)

__all__ = [
    "LIVE_VIEW",
    "IndexCheckFailed",
    "IndexChecks",
    "IndexNotReady",
    "IndexStats",
    "measure_recall",
    "rebuild_pgvector_index",
    "rollback_pgvector_index",
    "sync_pgvector_index",
]
