"""The graph's library steps in order, without Dagster: for scripts, benchmarks and tests.

Usage::

    build_indexes(Platform(Settings()))   # corpus → documents → chunks → embeddings → pgvector index
"""

from __future__ import annotations

from dataclasses import dataclass

from sage_platform.chunking import ChunkStats, chunk_documents
from sage_platform.embeddings import EmbedStats, embed_missing_chunks
from sage_platform.index import IndexStats, sync_pgvector_index
from sage_platform.ingest import IngestStats, ingest_corpus
from sage_platform.platform import Platform


@dataclass
class BuildStats:
    ingest: IngestStats
    chunks: ChunkStats
    embeddings: EmbedStats
    index: IndexStats


def build_indexes(platform: Platform) -> BuildStats:
    settings = platform.settings
    ingest = ingest_corpus(platform.db, settings.corpus_dir, max_document_bytes=settings.max_document_bytes)
    chunks = chunk_documents(platform.db, platform.splitter, default_language=settings.text_search_language)
    embeddings = embed_missing_chunks(platform.db, platform.embedder, texts_per_commit=settings.embedding_commit_every)
    index = sync_pgvector_index(
        platform.db, model=platform.embedder.model_name, dim=platform.embedder.dimension, checks=platform.index_checks
    )
    return BuildStats(ingest, chunks, embeddings, index)
