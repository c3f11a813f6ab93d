"""Embedders (local sentence-transformers, OpenAI-compatible API) and the content-addressed store."""

from sage_platform.embeddings.base import Embedder, normalize
from sage_platform.embeddings.embedding_store import EmbedStats, embed_missing_chunks
from sage_platform.embeddings.factory import embedder_from_settings

__all__ = ["EmbedStats", "Embedder", "embed_missing_chunks", "embedder_from_settings", "normalize"]
