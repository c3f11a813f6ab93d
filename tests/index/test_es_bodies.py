"""The exact request bodies sent to Elasticsearch."""

import pytest

from sage_platform.index.es_bodies import (
    alias_swap_body,
    bm25_body,
    chunk_document,
    delete_actions,
    filter_clauses,
    index_actions,
    index_body,
    knn_body,
    rrf_body,
)

ROW = ("c1", "doc.md", 0, "Some text", "Title", "doc.md", {"team": "a"}, "h1", "english", [0.5, 0.25])


def test_index_body_maps_text_vectors_and_metadata() -> None:
    body = index_body(384)
    properties = body["mappings"]["properties"]
    assert properties["text"] == {"type": "text", "analyzer": "sage_text"}
    assert properties["embedding"] == {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine",
        "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100},
    }  # fmt: skip
    assert properties["metadata"] == {"type": "object", "dynamic": True}
    assert body["mappings"]["dynamic_templates"][0]["metadata_as_keywords"]["mapping"]["type"] == "keyword"
    analyzer = body["settings"]["analysis"]["analyzer"]["sage_text"]
    assert analyzer["filter"] == ["cjk_width", "lowercase", "cjk_bigram", "sage_english_stop", "porter_stem"]
    assert body["settings"]["refresh_interval"] == "-1"


def test_bulk_actions() -> None:
    assert list(index_actions("sage-chunks-3", [ROW])) == [
        {"_op_type": "index", "_index": "sage-chunks-3", "_id": "c1", "_source": chunk_document(ROW)}
    ]
    assert chunk_document(ROW) == {
        "chunk_id": "c1", "doc_id": "doc.md", "position": 0, "text": "Some text", "title": "Title",
        "source": "doc.md", "language": "english", "doc_hash": "h1", "metadata": {"team": "a"},
        "embedding": [0.5, 0.25],
    }  # fmt: skip
    assert list(delete_actions("sage-chunks-3", ["c1"])) == [
        {"_op_type": "delete", "_index": "sage-chunks-3", "_id": "c1"}
    ]


def test_alias_swap_is_one_atomic_call() -> None:
    assert alias_swap_body("sage-chunks-4", ["sage-chunks-3"]) == {
        "actions": [
            {"remove": {"index": "sage-chunks-3", "alias": "sage-chunks"}},
            {"add": {"index": "sage-chunks-4", "alias": "sage-chunks"}},
        ]
    }
    assert alias_swap_body("sage-chunks-1", []) == {
        "actions": [{"add": {"index": "sage-chunks-1", "alias": "sage-chunks"}}]
    }


def test_bm25_knn_and_rrf_bodies() -> None:
    filters = {"source": "a.md", "metadata.team": "x", "language": "de"}
    clauses = [{"term": {"language": "german"}}, {"term": {"source": "a.md"}}, {"term": {"metadata.team": "x"}}]
    assert filter_clauses(filters) == clauses
    assert bm25_body("hello world", 7, filters) == {
        "size": 7,
        "_source": {"excludes": ["embedding"]},
        "query": {"bool": {"must": [{"match": {"text": {"query": "hello world"}}}], "filter": clauses}},
    }
    assert knn_body([1.0, 0.0], 5, 100, {"doc_id": "d"}) == {
        "size": 5,
        "_source": {"excludes": ["embedding"]},
        "knn": {"field": "embedding", "query_vector": [1.0, 0.0], "k": 5, "num_candidates": 100,
                "filter": [{"term": {"doc_id": "d"}}]},
    }  # fmt: skip
    assert rrf_body("q", [0.0, 1.0], 10, depth=50, num_candidates=100) == {
        "size": 10,
        "_source": {"excludes": ["embedding"]},
        "retriever": {
            "rrf": {
                "retrievers": [
                    {"standard": {"query": {"match": {"text": {"query": "q"}}}}},
                    {"knn": {"field": "embedding", "query_vector": [0.0, 1.0], "k": 50, "num_candidates": 100}},
                ],
                "rank_window_size": 50,
                "rank_constant": 60,
            }
        },
    }
    filtered = rrf_body("q", [0.0, 1.0], 10, depth=50, num_candidates=100, filters={"title": "T"})
    assert filtered["retriever"]["rrf"]["retrievers"][0]["standard"]["filter"] == [{"term": {"title.keyword": "T"}}]
    assert filtered["retriever"]["rrf"]["retrievers"][1]["knn"]["filter"] == [{"term": {"title.keyword": "T"}}]


def test_bad_filters_are_named() -> None:
    with pytest.raises(ValueError, match="unknown filter key 'colour'"):
        filter_clauses({"colour": "red"})
