"""Search indexes: the pgvector table with HNSW, and the binary COPY writer."""

from sage_platform.index.copy_binary import vector_rows_payload
from sage_platform.index.pgvector import INDEX_TABLE, IndexNotReady, IndexStats, sync_pgvector_index

__all__ = ["INDEX_TABLE", "IndexNotReady", "IndexStats", "sync_pgvector_index", "vector_rows_payload"]
