"""The exact Elasticsearch request bodies the platform sends, as plain functions (and so testable).

One index per build, ``sage-chunks-<version>``, read through the alias ``sage-chunks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sage_platform.db.vectors import as_array
from sage_platform.filters import split_filters
from sage_platform.text_search import config_for_language

ALIAS = "sage-chunks"
INDEX_PREFIX = "sage-chunks-"
RRF_RANK_CONSTANT = 60


def index_body(dim: int, *, shards: int = 1, m: int = 16, ef_construction: int = 100) -> dict[str, Any]:
    """Settings and mappings: ``text`` analysed for BM25, ``embedding`` cosine HNSW, metadata as keywords.
    Created without replicas and refreshes: the bulk load writes each document once; ``loaded_settings``
    adds both after it."""
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": 0,
            "refresh_interval": "-1",
            "analysis": {
                "filter": {"sage_english_stop": {"type": "stop", "stopwords": "_english_"}},
                "analyzer": {
                    # CJK as bigrams (like the Postgres side), English stop words and stemming.
                    "sage_text": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["cjk_width", "lowercase", "cjk_bigram", "sage_english_stop", "porter_stem"],
                    }
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": {"type": "keyword"},
                "doc_id": {"type": "keyword"},
                "position": {"type": "integer"},
                "text": {"type": "text", "analyzer": "sage_text"},
                "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
                "source": {"type": "keyword"},
                "language": {"type": "keyword"},
                "doc_hash": {"type": "keyword"},
                "metadata": {"type": "object", "dynamic": True},
                "embedding": {
                    "type": "dense_vector",
                    "dims": dim,
                    "index": True,
                    "similarity": "cosine",
                    "index_options": {"type": "hnsw", "m": m, "ef_construction": ef_construction},
                },
            },
            "dynamic_templates": [
                {
                    "metadata_as_keywords": {
                        "path_match": "metadata.*",
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024},
                    }
                }
            ],
        },
    }


def chunk_document(row: Sequence[Any]) -> dict[str, Any]:
    """A search-table row (chunk_id, doc_id, position, text, title, source, metadata, doc_hash,
    ts_config, embedding) as an Elasticsearch document."""
    chunk_id, doc_id, position, text, title, source, metadata, doc_hash, ts_config, embedding = row
    return {
        "chunk_id": chunk_id,
        "doc_id": doc_id,
        "position": position,
        "text": text,
        "title": title,
        "source": source,
        "language": str(ts_config),
        "doc_hash": doc_hash,
        "metadata": metadata,
        "embedding": as_array(embedding).tolist(),
    }


def index_actions(index: str, rows: Iterable[Sequence[Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        document = chunk_document(row)
        yield {"_op_type": "index", "_index": index, "_id": document["chunk_id"], "_source": document}


def delete_actions(index: str, chunk_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    for chunk_id in chunk_ids:
        yield {"_op_type": "delete", "_index": index, "_id": chunk_id}


def loaded_settings(replicas: int) -> dict[str, Any]:
    """What a freshly loaded index gets before it goes live: searchable within a second, and its replicas."""
    return {"index": {"refresh_interval": "1s", "number_of_replicas": replicas}}


def alias_swap_body(new_index: str, old_indices: Sequence[str], alias: str = ALIAS) -> dict[str, Any]:
    """One atomic ``POST _aliases``: readers move from the old index to the new one at once."""
    actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": alias}} for old in old_indices]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return {"actions": actions}


def filter_clauses(filters: Mapping[str, str] | None) -> list[dict[str, Any]]:
    columns, metadata = split_filters(filters)
    clauses: list[dict[str, Any]] = []
    for key, value in sorted(columns.items()):
        if key == "title":
            clauses.append({"term": {"title.keyword": value}})
        elif key == "language":
            clauses.append({"term": {"language": config_for_language(value)}})
        else:
            clauses.append({"term": {key: value}})
    clauses.extend({"term": {f"metadata.{key}": value}} for key, value in sorted(metadata.items()))
    return clauses


_SOURCE = {"excludes": ["embedding"]}


def bm25_body(query: str, k: int, filters: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "size": k,
        "_source": _SOURCE,
        "query": {"bool": {"must": [{"match": {"text": {"query": query}}}], "filter": filter_clauses(filters)}},
    }


def _knn(vector: Sequence[float], k: int, num_candidates: int, filters: Mapping[str, str] | None) -> dict[str, Any]:
    clause: dict[str, Any] = {
        "field": "embedding",
        "query_vector": [float(x) for x in vector],
        "k": k,
        "num_candidates": max(num_candidates, k),
    }
    if filters:
        clause["filter"] = filter_clauses(filters)
    return clause


def knn_body(
    vector: Sequence[float], k: int, num_candidates: int, filters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Top-level ``knn`` search; filters apply inside the HNSW search, so k hits still come back."""
    return {"size": k, "_source": _SOURCE, "knn": _knn(vector, k, num_candidates, filters)}


def rrf_body(
    query: str,
    vector: Sequence[float],
    k: int,
    *,
    depth: int,
    num_candidates: int,
    filters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Hybrid: the ``rrf`` retriever over a BM25 ``standard`` retriever and a ``knn`` retriever."""
    standard: dict[str, Any] = {"query": {"match": {"text": {"query": query}}}}
    if filters:
        standard["filter"] = filter_clauses(filters)
    return {
        "size": k,
        "_source": _SOURCE,
        "retriever": {
            "rrf": {
                "retrievers": [{"standard": standard}, {"knn": _knn(vector, depth, num_candidates, filters)}],
                "rank_window_size": max(depth, k),
                "rank_constant": RRF_RANK_CONSTANT,
            }
        },
    }
