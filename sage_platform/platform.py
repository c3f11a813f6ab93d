"""One object that wires settings to the parts: database, embedder, splitter, retriever, answerer.

Usage::

    platform = Platform(Settings())
    platform.retriever.search("How does ingestion stay incremental?", k=5)
"""

from __future__ import annotations

from functools import cached_property

from sage_platform.chunking import ChunkSplitter
from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.embeddings import Embedder, embedder_from_settings
from sage_platform.generation import Answerer, answerer_from_settings
from sage_platform.retrieval import DenseRetriever, Retriever


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        return Database.from_settings(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return embedder_from_settings(self.settings)

    @cached_property
    def splitter(self) -> ChunkSplitter:
        return ChunkSplitter(self.embedder.tokenizer, self.settings.chunk_size, self.settings.chunk_overlap)

    @cached_property
    def retriever(self) -> Retriever:
        return DenseRetriever(self.db, self.embedder, ef_search=self.settings.hnsw_ef_search)

    @cached_property
    def answerer(self) -> Answerer:
        return answerer_from_settings(self.settings, self.embedder)
