"""Elasticsearch indexing: one index per build (``sage-chunks-<version>``) behind the alias
``sage-chunks``, loaded with the client's bulk helper, checked, then switched in by one atomic
``_aliases`` call. Between builds, ``sync`` sends only the difference, tracked in ``es_index_rows``.

Usage::

    indexer = ElasticsearchIndexer.from_settings(settings, db)
    stats = indexer.sync(model="sentence-transformers/all-MiniLM-L6-v2", dim=384, checks=IndexChecks())
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg import sql

from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.db.vectors import as_array
from sage_platform.index import versions
from sage_platform.index.es_bodies import (
    ALIAS,
    INDEX_PREFIX,
    alias_swap_body,
    delete_actions,
    index_actions,
    index_body,
    knn_body,
    loaded_settings,
)
from sage_platform.index.pgvector import IndexCheckFailed, IndexChecks, IndexStats, ensure_vectors
from sage_platform.index.versions import IndexVersion

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

BACKEND = "elasticsearch"

_ROWS = """
    SELECT c.chunk_id, c.doc_id, c.position, c.text, d.title, d.source, d.metadata, c.doc_hash, c.ts_config,
           e.embedding
    FROM chunks c JOIN documents d ON d.doc_id = c.doc_id
    JOIN embeddings e ON e.model = %s AND e.text_hash = c.text_hash
"""
_UNSENT_ROWS = """
    SELECT c.chunk_id, c.doc_id, c.position, c.text, d.title, d.source, d.metadata, c.doc_hash, c.ts_config,
           e.embedding
    FROM chunks c JOIN documents d ON d.doc_id = c.doc_id
    JOIN embeddings e ON e.model = %s AND e.text_hash = c.text_hash
    WHERE NOT EXISTS (SELECT 1 FROM es_index_rows r
                      WHERE r.index_name = %s AND r.chunk_id = c.chunk_id AND r.doc_hash = c.doc_hash)
"""


def es_client(settings: Settings) -> Elasticsearch:
    """The official client, authenticated by API key or user/password from ``SAGE_ELASTICSEARCH_*``."""
    from elasticsearch import Elasticsearch

    if not settings.elasticsearch_url:
        raise ValueError("Elasticsearch not configured: set SAGE_ELASTICSEARCH_URL")
    auth: dict[str, Any] = {}
    if settings.elasticsearch_api_key:
        auth["api_key"] = settings.elasticsearch_api_key.get_secret_value()
    elif settings.elasticsearch_username:
        password = settings.elasticsearch_password.get_secret_value() if settings.elasticsearch_password else ""
        auth["basic_auth"] = (settings.elasticsearch_username, password)
    return Elasticsearch(settings.elasticsearch_url, request_timeout=60, max_retries=3, retry_on_timeout=True, **auth)


class ElasticsearchIndexer:
    def __init__(
        self, client: Any, db: Database, *, bulk_chunk_size: int = 500, shards: int = 1, replicas: int = 0
    ) -> None:
        self.client = client
        self.db = db
        self.bulk_chunk_size = bulk_chunk_size
        self.shards = shards
        self.replicas = replicas

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> ElasticsearchIndexer:
        return cls(
            es_client(settings), db, shards=settings.elasticsearch_shards, replicas=settings.elasticsearch_replicas
        )

    def sync(self, *, model: str, dim: int, checks: IndexChecks) -> IndexStats:
        with self.db.connect() as conn:
            live = versions.live_version(conn, BACKEND)
        if live is None or (live.model, live.dim) != (model, dim):
            return self.rebuild(model=model, dim=dim, checks=checks)
        began = time.perf_counter()
        stats = IndexStats(mode="incremental", version=live.version)
        with self.db.connect() as conn:
            stale = [
                row[0]
                for row in conn.execute(
                    """SELECT r.chunk_id FROM es_index_rows r WHERE r.index_name = %s AND NOT EXISTS
                       (SELECT 1 FROM chunks c WHERE c.chunk_id = r.chunk_id AND c.doc_hash = r.doc_hash)""",
                    (live.name,),
                )
            ]
            fresh = conn.execute(_UNSENT_ROWS, (model, live.name)).fetchall()
            loaded = time.perf_counter()
            self._bulk(delete_actions(live.name, stale))
            self._bulk(index_actions(live.name, fresh))
            self.client.indices.refresh(index=live.name)
            stats.load_seconds = time.perf_counter() - loaded
            conn.execute("DELETE FROM es_index_rows WHERE index_name = %s AND chunk_id = ANY(%s)", (live.name, stale))
            self._record_rows(conn, live.name, [(row[0], row[7]) for row in fresh])
            stats.deleted, stats.inserted = len(stale), len(fresh)
            stats.rows = int(self.client.count(index=live.name)["count"])
            conn.execute(
                "UPDATE index_versions SET rows = %s, synced_at = now() WHERE version = %s", (stats.rows, live.version)
            )
        stats.total_seconds = time.perf_counter() - began
        return stats

    def rebuild(self, *, model: str, dim: int, checks: IndexChecks) -> IndexStats:
        began = time.perf_counter()
        stats = IndexStats(mode="rebuild")
        with self.db.connect() as conn:
            chunk_count = ensure_vectors(conn, model)
            version = versions.new_version(conn, BACKEND, INDEX_PREFIX, model, dim)
            conn.commit()
            stats.version = version.version
            self.client.indices.create(index=version.name, **index_body(dim, shards=self.shards))
            loaded = time.perf_counter()
            with conn.cursor(name="es_rows") as cursor:
                cursor.itersize = 2000
                cursor.execute(_ROWS, (model,))
                self._bulk(index_actions(version.name, self._recorded(conn, version.name, cursor)))
            self.client.indices.put_settings(index=version.name, settings=loaded_settings(self.replicas))
            self.client.indices.refresh(index=version.name)
            stats.load_seconds = time.perf_counter() - loaded
            stats.inserted = stats.rows = int(self.client.count(index=version.name)["count"])
            conn.commit()
            stats.checks = self._check(conn, version, chunk_count, stats.rows, checks)
            self._switch_alias(conn, version, stats)
        stats.total_seconds = time.perf_counter() - began
        return stats

    def _bulk(self, actions: Iterator[dict[str, Any]]) -> None:
        from elasticsearch import helpers

        helpers.bulk(self.client, actions, chunk_size=self.bulk_chunk_size, max_retries=3, refresh=False)

    def _recorded(self, conn: psycopg.Connection, index: str, rows: Any) -> Iterator[Any]:
        """Pass rows through while remembering (chunk_id, doc_hash) for later difference syncs."""
        batch: list[tuple[str, str]] = []
        for row in rows:
            batch.append((row[0], row[7]))
            yield row
        with self.db.connect() as writer:
            self._record_rows(writer, index, batch)

    @staticmethod
    def _record_rows(conn: psycopg.Connection, index: str, rows: list[tuple[str, str]]) -> None:
        with conn.cursor().copy("COPY es_index_rows (index_name, chunk_id, doc_hash) FROM STDIN") as copy:
            for chunk_id, doc_hash in rows:
                copy.write_row((index, chunk_id, doc_hash))

    def _check(
        self, conn: psycopg.Connection, version: IndexVersion, chunk_count: int, rows: int, checks: IndexChecks
    ) -> dict[str, Any]:
        results, failure = versions.check_results(
            rows, chunk_count, lambda: self._recall(conn, version, checks), min_recall=checks.min_recall, k=checks.k
        )
        if failure:
            versions.mark(conn, version.version, "failed", rows=rows, checks={**results, "failure": failure})
            conn.execute("DELETE FROM es_index_rows WHERE index_name = %s", (version.name,))
            conn.commit()
            self.client.indices.delete(index=version.name, ignore_unavailable=True)
            raise IndexCheckFailed(f"Elasticsearch index {version.name} not switched in: {failure}")
        return results

    def _recall(self, conn: psycopg.Connection, version: IndexVersion, checks: IndexChecks) -> float:
        """ES knn against exact cosine search in PostgreSQL, ties within the k-th distance counted."""
        samples = conn.execute(
            "SELECT embedding FROM embeddings WHERE model = %s ORDER BY md5(text_hash) LIMIT %s",
            (version.model, checks.sample_queries),
        ).fetchall()
        exact_sql = sql.SQL(
            """SELECT e.embedding <=> %s FROM chunks c JOIN embeddings e ON e.model = %s AND e.text_hash = c.text_hash
               ORDER BY 1 LIMIT %s"""
        )
        if not samples:
            return 1.0
        hits = total = 0
        for query in versions.gate_queries(np.stack([as_array(vector) for (vector,) in samples])):
            truth = [d for (d,) in conn.execute(exact_sql, (query, version.model, checks.k))]
            found = self.client.search(index=version.name, body=knn_body(query.tolist(), checks.k, checks.ef_search))
            # ES reports cosine as (1 + cos) / 2; back to distance 1 - cos.
            distances = [2 - 2 * hit["_score"] for hit in found["hits"]["hits"]]
            if truth:
                hits += sum(1 for d in distances if d <= truth[-1] + 1e-4)
                total += len(truth)
        return hits / total if total else 1.0

    def _switch_alias(self, conn: psycopg.Connection, version: IndexVersion, stats: IndexStats) -> None:
        current = self._alias_indices()
        self.client.indices.update_aliases(**alias_swap_body(version.name, current))
        versions.mark(conn, version.version, "building", rows=stats.rows, checks=stats.checks)
        for stale in versions.promote(conn, BACKEND, version.version):
            self.client.indices.delete(index=stale.name, ignore_unavailable=True)
            conn.execute("DELETE FROM es_index_rows WHERE index_name = %s", (stale.name,))
        conn.commit()

    def _alias_indices(self) -> list[str]:
        from elasticsearch import NotFoundError

        try:
            return sorted(self.client.indices.get_alias(name=ALIAS).body)
        except NotFoundError:
            return []
