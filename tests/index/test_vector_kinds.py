"""Above SAGE_BINARY_INDEX_ABOVE_ROWS a version gets binary-quantized HNSW: recorded on the version, gated by
recall measured as readers search, and searched by dense and hybrid retrieval in two stages (Hamming
candidates through the index, re-ranked by cosine on the full vectors)."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sage_platform.index import IndexChecks, rebuild_pgvector_index
from sage_platform.index.vector_kinds import BINARY, FULL, VectorIndex, choose_kind
from sage_platform.platform import Platform
from tests.conftest import indexed_platform

DOCUMENTS = 200


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, DOCUMENTS, binary_index_above_rows=100)
    yield platform
    platform.db.close()


def _index_scans(platform: Platform, name: str) -> int:
    with platform.db.connect() as conn:
        row = conn.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s", (name,)).fetchone()
    assert row is not None, name
    return int(row[0])


def _stats_flushed(platform: Platform) -> None:
    with platform.db.connect() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")


def test_kind_follows_the_row_threshold() -> None:
    assert choose_kind(rows=1_000_001, binary_above_rows=1_000_000) == BINARY
    assert choose_kind(rows=1_000_000, binary_above_rows=1_000_000) == FULL
    with pytest.raises(ValueError, match="unknown vector index kind 'pq'"):
        VectorIndex("pq", 384)


def test_a_large_version_is_binary_quantized_and_searched_in_two_stages(platform: Platform) -> None:
    with platform.db.connect() as conn:
        version, kind, recall, rows = conn.execute(
            """SELECT version, checks->>'vector_index', (checks->>'recall@10')::float8, rows FROM index_versions
               WHERE backend = 'pgvector' AND status = 'live'"""
        ).fetchone()  # type: ignore[misc]
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"chunk_index_v{version}_hnsw",)
        ).fetchone()[0]  # type: ignore[index]
        stored = conn.execute("SELECT chunk_id, text, embedding FROM chunk_index ORDER BY chunk_id").fetchall()
    assert rows > 100 and kind == BINARY and recall >= 0.95
    assert "binary_quantize(embedding))::bit(384)) bit_hamming_ops" in definition

    ids = [chunk_id for chunk_id, _, _ in stored]
    matrix = np.stack([np.asarray(vector.to_list(), dtype=np.float32) for _, _, vector in stored])
    index_name = f"chunk_index_v{version}_hnsw"
    _stats_flushed(platform)
    scans_before = _index_scans(platform, index_name)
    # On a table this small the planner may prefer a scan; with scans priced out, a search whose ORDER BY
    # does not match the index expression would still scan, and the index's counter would not move.
    url = platform.settings.database_url
    assert url is not None
    forced = Platform(
        platform.settings.model_copy(
            update={"database_url": f"{url}{'&' if '?' in url else '?'}options=-c%20enable_seqscan%3Doff"}
        )
    )
    dense, hybrid = forced.retriever_named("dense"), forced.retriever_named("hybrid")
    probes = stored[:: max(1, len(stored) // 20)][:20]
    found = 0
    for chunk_id, text, _ in probes:
        query = platform.embedder.embed([text])[0]
        exact = {ids[i] for i in np.argsort(-(matrix @ query))[:5]}
        hits = dense.search_vector(query, k=5)
        scores = [hit.score for hit in hits]
        assert len(hits) == 5 and scores == sorted(scores, reverse=True)  # re-ranked by cosine, not Hamming
        for hit in hits:  # each score is the full vectors' cosine similarity
            assert hit.score == pytest.approx(float(matrix[ids.index(hit.chunk_id)] @ query), abs=1e-5)
        assert hits[0].chunk_id == chunk_id or hits[0].score == pytest.approx(1.0, abs=1e-5)
        found += len(exact & {hit.chunk_id for hit in hits})
        assert chunk_id in {hit.chunk_id for hit in hybrid.search(text, k=5)}
    forced.db.close()
    _stats_flushed(platform)
    assert _index_scans(platform, index_name) >= scans_before + 2 * len(probes)  # both retrievers used the index
    assert found / (5 * len(probes)) >= 0.9  # recall@5 against exact search, on every chunk of 200 abstracts

    # Below the threshold the next version is full-vector HNSW again.
    embedder = platform.embedder
    stats = rebuild_pgvector_index(
        platform.db,
        model=embedder.model_name,
        dim=embedder.dimension,
        checks=IndexChecks(binary_above_rows=rows),
    )
    assert stats.checks["vector_index"] == FULL
    with platform.db.connect() as conn:
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"chunk_index_v{stats.version}_hnsw",)
        ).fetchone()[0]  # type: ignore[index]
    assert "vector_cosine_ops" in definition
