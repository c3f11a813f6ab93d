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
from sage_platform.embeddings.query_cache import QueryEmbedder
from sage_platform.generation import Answerer, answerer_from_settings
from sage_platform.index import IndexChecks
from sage_platform.retrieval import (
    DenseRetriever,
    ElasticsearchRetriever,
    HybridRetriever,
    Retriever,
    SparseRetriever,
    check_retriever_name,
)


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
    def query_embedder(self) -> Embedder:
        """The embedder for evaluation searches: a query asked again in this process is not embedded again."""
        return QueryEmbedder(self.embedder)

    @cached_property
    def splitter(self) -> ChunkSplitter:
        return ChunkSplitter(self.embedder.tokenizer, self.settings.chunk_size, self.settings.chunk_overlap)

    @cached_property
    def retriever(self) -> Retriever:
        """The retriever ``SAGE_RETRIEVER`` names (default hybrid)."""
        return self.retriever_named(self.settings.retriever)

    def retriever_named(self, name: str, *, remember_queries: bool = False) -> Retriever:
        """``remember_queries``: the queries' vectors are kept for the process (``query_embedder``); only
        where one user's queries are searched for (evaluation runs), since a remembered query answers
        faster and so would tell one user another's exact question."""
        settings = self.settings
        check_retriever_name(name)
        embedder = self.query_embedder if remember_queries else self.embedder
        if name == "dense":
            return DenseRetriever(
                self.db,
                embedder,
                ef_search=settings.hnsw_ef_search,
                default_config=settings.text_search_language,
            )
        if name == "sparse":
            return SparseRetriever(
                self.db, max_candidates=settings.sparse_max_candidates, default_config=settings.text_search_language
            )
        if name == "hybrid":
            return HybridRetriever(
                self.db,
                embedder,
                dense_depth=settings.hybrid_dense_depth,
                sparse_depth=settings.hybrid_sparse_depth,
                max_candidates=settings.sparse_max_candidates,
                ef_search=settings.hnsw_ef_search,
                default_config=settings.text_search_language,
                fusion=settings.hybrid_fusion,
                dense_weight=settings.hybrid_dense_weight,
            )
        from sage_platform.index.elasticsearch import es_client

        return ElasticsearchRetriever(es_client(settings), embedder, depth=settings.hybrid_dense_depth)

    @property
    def index_checks(self) -> IndexChecks:
        return IndexChecks(
            sample_queries=self.settings.index_check_queries,
            min_recall=self.settings.index_min_recall,
            ef_search=self.settings.hnsw_ef_search,
            binary_above_rows=self.settings.binary_index_above_rows,
        )

    @cached_property
    def answerer(self) -> Answerer:
        return answerer_from_settings(self.settings, self.embedder)
