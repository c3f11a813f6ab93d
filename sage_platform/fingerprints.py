"""What each stage's output depends on, as Dagster ``code_version`` strings.

A change in the chunker's algorithm or settings, the embedding model, or the index parameters
changes the matching version, so the UI marks those assets (and everything downstream) stale.
Computed from settings alone: no model is loaded.

Usage::

    versions = code_versions(Settings())
    versions["document_chunks"]     # 'cdc1:sentence-transformers/all-MiniLM-L6-v2:200:32'
"""

from __future__ import annotations

from sage_platform.chunking.chunk_store import chunks_fingerprint
from sage_platform.chunking.splitter import chunker_fingerprint
from sage_platform.config import Settings
from sage_platform.index.pgvector import HNSW_EF_CONSTRUCTION, HNSW_M
from sage_platform.tokenization import CharacterTokenizer, resolve_model_dir


def embedder_fingerprint(settings: Settings) -> str:
    """The model whose vectors the index holds (an API model's name, or the local model's stored name)."""
    if settings.embedding_base_url:
        return f"api:{settings.embedding_model}"
    return resolve_model_dir(settings.embedding_model)[1]


def code_versions(settings: Settings) -> dict[str, str]:
    embedder = embedder_fingerprint(settings)
    tokenizer = CharacterTokenizer.name if settings.embedding_base_url else embedder  # local: the model's own
    chunker = chunker_fingerprint(tokenizer, settings.chunk_size, settings.chunk_overlap)
    index = f"{embedder}:hnsw(m={HNSW_M},ef_construction={HNSW_EF_CONSTRUCTION}):fts={settings.text_search_language}"
    return {
        "document_chunks": chunks_fingerprint(chunker, settings.text_search_language),
        "chunk_embeddings": f"{chunker}|{embedder}",
        "pgvector_index": index,
        "es_index": index,
    }
