"""Indexing operators: ``Chunker`` → ``Embedder`` → ``PgVectorWriter`` / ``ElasticsearchWriter``.

They use the platform's own splitter (token-aware, the configured chunk size and overlap), embedder
and Elasticsearch document shape. The writers keep a collection of their own (``table`` / ``index``),
apart from the platform's managed index, so a user pipeline never rewrites what the asset graph owns.

Usage::

    (env.from_source(FileSource, {"file_path": "docs.jsonl"})       # {"doc_id": ..., "text": ...}
        .flatmap(Chunker)
        .map(Embedder)
        .sink(PgVectorWriter, {"table": "my_vectors"}))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sage_platform.chunking.chunk_store import chunk_id
from sage_platform.dataflow.functions import FlatMapFunction, MapFunction, SinkFunction
from sage_platform.dataflow.library._platform import platform_for
from sage_platform.hashing import text_hash

CHUNK_FIELDS = frozenset({"chunk_id", "doc_id", "position", "text", "token_count"})


class Chunker(FlatMapFunction):
    """A document record (``doc_id``, ``text``; other fields go to each chunk's ``metadata``) into
    chunk records. Config ``settings`` sets ``chunk_size``/``chunk_overlap`` as for the platform."""

    requires = frozenset({"doc_id", "text"})
    provides = CHUNK_FIELDS | {"metadata"}
    batch_size = 16

    def open(self) -> None:
        self._splitter = platform_for(self.config).splitter

    def execute_batch(self, records: list[Any]) -> list[Any]:
        pieces = self._splitter.split_many([str(r["text"]) for r in records])
        out = []
        for record, chunks in zip(records, pieces, strict=True):
            metadata = {k: v for k, v in record.items() if k not in ("doc_id", "text")}
            out.append([
                {"chunk_id": chunk_id(str(record["doc_id"]), c.position, text_hash(c.text)), "doc_id": record["doc_id"],
                 "position": c.position, "text": c.text, "token_count": c.token_count, "metadata": metadata}
                for c in chunks
            ])  # fmt: skip
        return out


class Embedder(MapFunction):
    """Adds ``embedding`` (a list of floats, unit length) for ``text`` with the platform's embedder
    (``model`` to choose another local one). Batched: one model call per batch (default 32)."""

    requires = frozenset({"text"})
    provides = frozenset({"embedding", "embedding_model"})
    batch_size = 32

    def open(self) -> None:
        self._embedder = platform_for(self.config).embedder

    def execute_batch(self, records: list[Any]) -> list[Any]:
        vectors = self._embedder.embed([str(r["text"]) for r in records])
        model = self._embedder.model_name
        return [{**r, "embedding": v.tolist(), "embedding_model": model} for r, v in zip(records, vectors, strict=True)]


class PgVectorWriter(SinkFunction):
    """Upserts chunk records with embeddings into the pgvector table ``table`` (default
    ``dataflow_vectors``), created on first use with an HNSW cosine index. Each batch commits."""

    requires = frozenset({"chunk_id", "text", "embedding"})
    batch_size = 200

    def open(self) -> None:
        self._db = platform_for(self.config).db
        self._table = str(self.config.get("table", "dataflow_vectors"))
        self._ready = False

    def _create(self, conn: Any, dim: int) -> None:
        from psycopg import sql

        table = sql.Identifier(self._table)
        conn.execute(sql.SQL(
            """CREATE TABLE IF NOT EXISTS {} (chunk_id text PRIMARY KEY, doc_id text, text text NOT NULL,
               metadata jsonb NOT NULL DEFAULT '{{}}', embedding vector({}) NOT NULL)"""
        ).format(table, sql.Literal(dim)))  # fmt: skip
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops)").format(
            sql.Identifier(f"{self._table}_embedding_hnsw"), table))  # fmt: skip
        self._ready = True

    def execute_batch(self, records: list[Any]) -> list[Any]:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        with self._db.connect() as conn:
            if not self._ready:
                self._create(conn, len(records[0]["embedding"]))
            statement = sql.SQL(
                """INSERT INTO {} (chunk_id, doc_id, text, metadata, embedding) VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (chunk_id) DO UPDATE SET doc_id = excluded.doc_id, text = excluded.text,
                   metadata = excluded.metadata, embedding = excluded.embedding"""
            ).format(sql.Identifier(self._table))
            rows = [(r["chunk_id"], r.get("doc_id"), r["text"], Jsonb(r.get("metadata") or {}),
                     np.asarray(r["embedding"], dtype=np.float32)) for r in records]  # fmt: skip
            with conn.cursor() as cursor:
                cursor.executemany(statement, rows)
        return [None] * len(records)


class ElasticsearchWriter(SinkFunction):
    """Indexes chunk records with embeddings into Elasticsearch ``index`` (default ``dataflow-chunks``)
    with the bulk API, in the platform's chunk document shape, on ``SAGE_ELASTICSEARCH_URL``
    (``client``: any ``elasticsearch.Elasticsearch``, for tests and custom auth)."""

    requires = frozenset({"chunk_id", "text", "embedding"})
    batch_size = 500

    def open(self) -> None:
        client = self.config.get("client")
        if client is None:
            from sage_platform.index.elasticsearch import es_client

            client = es_client(platform_for(self.config).settings)
        self._client = client
        self._index = str(self.config.get("index", "dataflow-chunks"))

    def execute_batch(self, records: list[Any]) -> list[Any]:
        from elasticsearch import helpers

        from sage_platform.index.es_bodies import index_actions

        rows = [(r["chunk_id"], r.get("doc_id"), r.get("position", 0), r["text"], r.get("title"), r.get("source"),
                 r.get("metadata") or {}, r.get("doc_hash"), r.get("language", "simple"), r["embedding"])
                for r in records]  # fmt: skip
        actions = list(index_actions(self._index, rows))
        helpers.bulk(self._client, actions, max_retries=3, refresh=False)
        return [None] * len(records)
