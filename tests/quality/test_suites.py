"""The Great Expectations suites against real data, and against each kind of damage."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.platform import Platform
from sage_platform.quality import chunks_quality, documents_quality, embeddings_quality, index_quality
from tests.conftest import indexed_platform


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, 10)
    yield platform
    platform.db.close()


def _suites(platform: Platform):  # type: ignore[no-untyped-def]
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    return {
        "documents": documents_quality(platform.db, platform.settings),
        "chunks": chunks_quality(platform.db, platform.settings),
        "embeddings": embeddings_quality(platform.db, model=model, dim=dim),
        "index": index_quality(platform.db),
    }


def _sql(platform: Platform, statement: str, *params: object) -> None:
    with platform.db.connect() as conn:
        conn.execute(statement, params)


def test_clean_data_passes_every_suite(platform: Platform) -> None:
    results = _suites(platform)
    assert {name: r.success for name, r in results.items()} == dict.fromkeys(results, True)
    assert results["chunks"].rows > 10 and results["documents"].evaluated == 4


def test_each_kind_of_damage_is_caught_with_its_rows(platform: Platform) -> None:
    with platform.db.connect() as conn:
        doc_id, chunk_id, text_hash = conn.execute(
            "SELECT doc_id, chunk_id, text_hash FROM chunks ORDER BY chunk_id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    _sql(platform, "UPDATE documents SET text = '   ' WHERE doc_id = %s", doc_id)
    _sql(platform, "UPDATE chunks SET token_count = 0 WHERE chunk_id = %s", chunk_id)
    _sql(platform, "UPDATE embeddings SET embedding = '[3,4,0]', dim = 3 WHERE text_hash = %s", text_hash)
    _sql(platform, "DELETE FROM chunk_index WHERE chunk_id = %s", chunk_id)
    results = _suites(platform)

    documents = results["documents"].failures
    assert [(f.expectation, f.column, f.unexpected_count) for f in documents] == [
        ("expect_column_values_to_be_between", "text_length", 1)
    ]
    assert documents[0].rows == [{"doc_id": doc_id, "text_length": 0}]
    assert [(f.column, f.rows[0]["chunk_id"]) for f in results["chunks"].failures] == [("token_count", chunk_id)]
    embeddings = {f.column: f for f in results["embeddings"].failures}
    assert set(embeddings) == {"dim", "norm"}
    assert embeddings["dim"].rows[0] == {"chunk_id": chunk_id, "dim": 3}
    assert embeddings["norm"].rows[0]["norm"] == pytest.approx(5.0)
    index = results["index"].failures
    assert [(f.expectation, f.column, f.unexpected_count) for f in index] == [
        ("expect_column_values_to_be_in_set", "indexed", 1)
    ]
    assert index[0].rows == [{"chunk_id": chunk_id, "indexed": False}]


def test_the_index_suite_names_a_row_of_a_removed_chunk_and_a_stale_row(platform: Platform) -> None:
    with platform.db.connect() as conn:
        gone, stale = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id LIMIT 2")]
        conn.execute("ALTER TABLE chunks DISABLE TRIGGER USER")  # damage the notes do not see
        conn.execute("DELETE FROM chunks WHERE chunk_id = %s", (gone,))
        conn.execute("UPDATE chunks SET doc_hash = 'changed' WHERE chunk_id = %s", (stale,))
        conn.execute("ALTER TABLE chunks ENABLE TRIGGER USER")
    failures = {f.column: f for f in index_quality(platform.db).failures}
    assert failures["chunk_exists"].rows == [{"chunk_id": gone, "chunk_exists": False}]
    assert failures["indexed"].rows == [{"chunk_id": stale, "indexed": False}]
    assert index_quality(platform.db, whole_table=False).success is False  # the failed whole read kept its state
