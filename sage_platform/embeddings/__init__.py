"""Embedders (local sentence-transformers, OpenAI-compatible API) and the content-addressed store."""

from sage_platform.embeddings.base import Embedder, normalize
from sage_platform.embeddings.factory import embedder_from_settings
from sage_platform.embeddings.store import EmbedStats, embed_missing_chunks

__all__ = ["EmbedStats", "Embedder", "embed_missing_chunks", "embedder_from_settings", "normalize"]
