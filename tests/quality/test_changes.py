"""The suites as the asset checks run them: the rows written since their last pass, the whole table when
their rules change, and nothing lost to a failure or to a write still in flight."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sage_platform.platform import Platform
from sage_platform.quality import (
    QualityResult,
    chunks_quality,
    documents_quality,
    embeddings_quality,
    index_quality,
)
from sage_platform.quality.suites import CHANGED_ROWS
from tests.conftest import indexed_platform


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, 6)
    yield platform
    platform.db.close()


def _chunks(platform: Platform, **overrides: object) -> QualityResult:
    settings = platform.settings.model_copy(update=overrides)
    return chunks_quality(platform.db, settings, whole_table=False)


def _embeddings(platform: Platform) -> QualityResult:
    embedder = platform.embedder
    return embeddings_quality(platform.db, model=embedder.model_name, dim=embedder.dimension, whole_table=False)


def _sql(platform: Platform, statement: str, *params: object) -> None:
    with platform.db.connect() as conn:
        conn.execute(statement, params)


def _first_chunk(platform: Platform) -> tuple[str, str, str]:
    with platform.db.connect() as conn:
        row = conn.execute("SELECT chunk_id, text_hash, doc_id FROM chunks ORDER BY chunk_id LIMIT 1").fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _count(platform: Platform, table: str) -> int:
    with platform.db.connect() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - the tests' own names
    return int(row[0]) if row else 0


def test_after_a_pass_only_the_rows_written_since_are_validated(platform: Platform) -> None:
    first = _chunks(platform)
    assert (first.success, first.scope, first.rows) == (True, "whole table", _count(platform, "chunks"))
    assert first.rows > 10
    again = _chunks(platform)
    assert (again.success, again.scope, again.rows) == (True, CHANGED_ROWS, 0)

    chunk_id, _, doc_id = _first_chunk(platform)
    _sql(platform, "UPDATE chunks SET text = text || ' ' WHERE chunk_id = %s", chunk_id)
    assert (_chunks(platform).rows, _chunks(platform).rows) == (1, 0)

    assert documents_quality(platform.db, platform.settings, whole_table=False).scope == "whole table"
    _sql(platform, "UPDATE documents SET chunker = 'another', title = 'x'")  # columns the suite does not read
    assert documents_quality(platform.db, platform.settings, whole_table=False).rows == 0
    _sql(platform, "UPDATE documents SET text = '  ' WHERE doc_id = %s", doc_id)
    documents = documents_quality(platform.db, platform.settings, whole_table=False)
    assert (documents.success, documents.rows, documents.scope) == (False, 1, CHANGED_ROWS)
    assert documents.failures[0].rows == [{"doc_id": doc_id, "text_length": 0}]


def test_a_failing_suite_fails_again_until_its_rows_are_mended(platform: Platform) -> None:
    assert _chunks(platform).success
    chunk_id, _, _ = _first_chunk(platform)
    _sql(platform, "UPDATE chunks SET token_count = 0 WHERE chunk_id = %s", chunk_id)
    for _ in range(2):  # nothing written in between: the failed run's rows are still to validate
        failed = _chunks(platform)
        assert (failed.success, failed.rows) == (False, 1)
        assert failed.failures[0].rows == [{"chunk_id": chunk_id, "token_count": 0}]
    _sql(platform, "UPDATE chunks SET token_count = 3 WHERE chunk_id = %s", chunk_id)
    mended = _chunks(platform)
    assert (mended.success, mended.rows) == (True, 1)  # the two noted writes of one chunk, validated once
    assert _chunks(platform).rows == 0


def test_new_rules_validate_the_whole_table_again(platform: Platform) -> None:
    assert _chunks(platform).success and _chunks(platform).rows == 0
    with platform.db.connect() as conn:
        row = conn.execute("SELECT max(token_count) FROM chunks").fetchone()
    largest = int(row[0]) if row else 0
    stricter = _chunks(platform, chunk_size=largest - 1)  # no chunk was written, but the rules changed
    assert (stricter.success, stricter.scope) == (False, "whole table")
    assert stricter.failures[0].column == "token_count"
    assert _chunks(platform, chunk_size=largest - 1).scope == "whole table"  # never passed under these rules


def test_a_removed_vector_is_caught_though_its_chunk_was_not_written(platform: Platform) -> None:
    assert _embeddings(platform).success and _embeddings(platform).rows == 0
    chunk_id, text_hash, _ = _first_chunk(platform)
    _sql(platform, "DELETE FROM embeddings WHERE text_hash = %s", text_hash)
    missing = _embeddings(platform)
    assert not missing.success and missing.scope == CHANGED_ROWS
    assert {f.column for f in missing.failures} >= {"has_vector"}
    assert {"chunk_id": chunk_id, "has_vector": False} in missing.failures[0].rows


def test_a_write_committed_while_a_suite_ran_is_validated_by_the_next_run(platform: Platform) -> None:
    assert _chunks(platform).success
    chunk_id, _, _ = _first_chunk(platform)
    with platform.db.connect() as writer:
        writer.execute("UPDATE chunks SET token_count = 0 WHERE chunk_id = %s", (chunk_id,))
        during = _chunks(platform)  # the write is not committed: neither its row nor its note is seen
        assert (during.success, during.rows) == (True, 0)
    after = _chunks(platform)
    assert (after.success, after.rows) == (False, 1)
    assert after.failures[0].rows == [{"chunk_id": chunk_id, "token_count": 0}]


def test_a_bulk_write_is_noted_for_each_suite_and_taken_by_its_pass(platform: Platform) -> None:
    def noted() -> dict[str, int]:
        with platform.db.connect() as conn:
            rows = conn.execute("SELECT reader, count(*) FROM change_notes GROUP BY reader").fetchall()
        return {reader: int(count) for reader, count in rows if reader != "pgvector_index"}

    with platform.db.connect() as conn:
        counts = conn.execute(
            "SELECT count(*), count(DISTINCT text_hash), count(DISTINCT doc_id) FROM chunks"
        ).fetchone()
    assert counts is not None
    chunks, texts, documents = counts
    written = noted()
    assert written["raw_documents"] == documents and written["document_chunks"] == chunks
    assert written["chunk_embeddings"] >= texts  # by each chunk's text, and again by each vector's
    assert _chunks(platform).success and _embeddings(platform).success
    assert documents_quality(platform.db, platform.settings, whole_table=False).success
    assert written["pgvector_index_quality"] == chunks and index_quality(platform.db, whole_table=False).success
    assert noted() == {}


def test_the_notes_migration_goes_down_and_up_again(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from sage_platform.db.migrate import alembic_config, upgrade
    from sage_platform.db.urls import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url))
    upgrade(engine, "head")
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")
    triggers = "SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%%_change_notes'"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('change_notes')").fetchone() == (None,)
        assert conn.execute(triggers).fetchone() == (0,)
    upgrade(engine, "head")
    with psycopg.connect(database_url) as conn:
        assert conn.execute(triggers).fetchone() == (8,)
    engine.dispose()
