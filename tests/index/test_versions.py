"""Zero-downtime rebuilds of the pgvector index: versions, checks, the view swap, rollback."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.config import Settings
from sage_platform.index import (
    IndexCheckFailed,
    IndexChecks,
    IndexNotReady,
    measure_recall,
    rebuild_pgvector_index,
    rollback_pgvector_index,
    sync_pgvector_index,
)
from sage_platform.index.versions import check_results
from sage_platform.pipeline import build_indexes
from sage_platform.platform import Platform
from tests.conftest import indexed_platform, pubmedqa_items


@pytest.fixture
def platform(pg_server: str, tmp_path: Path) -> Iterator[Platform]:
    platform = indexed_platform(pg_server, tmp_path, 15)
    yield platform
    platform.db.close()


def _state(platform: Platform) -> tuple[str, dict[int, str]]:
    with platform.db.connect() as conn:
        view = conn.execute("SELECT definition FROM pg_views WHERE viewname = 'chunk_index'").fetchone()[0]  # type: ignore[index]
        rows = dict(conn.execute("SELECT version, status FROM index_versions ORDER BY version").fetchall())
    return view, rows


def _tables(platform: Platform) -> set[str]:
    """The index versions whose tables exist; each must have its lexicon beside it, and only then."""
    with platform.db.connect() as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'chunk_index_v%'")}
    versions = {name for name in names if not name.endswith("_lexicon")}
    assert names == versions | {f"{name}_lexicon" for name in versions}, names
    return versions


def test_rebuilds_switch_readers_keep_one_previous_and_drop_older(platform: Platform) -> None:
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    view, rows = _state(platform)
    assert "chunk_index_v1" in view and rows == {1: "live"}
    query = pubmedqa_items(15)[4][1]["QUESTION"]
    before = [h.chunk_id for h in platform.retriever_named("hybrid").search(query, k=5)]

    stats = rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=IndexChecks())
    assert stats.version == 2 and stats.checks["recall@10"] >= 0.95 and stats.checks["rows"] == stats.checks["chunks"]
    view, rows = _state(platform)
    assert "chunk_index_v2" in view and rows == {1: "previous", 2: "live"}
    assert _tables(platform) == {"chunk_index_v1", "chunk_index_v2"}
    assert [h.chunk_id for h in platform.retriever_named("hybrid").search(query, k=5)] == before

    rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=IndexChecks())
    view, rows = _state(platform)
    assert rows == {1: "dropped", 2: "previous", 3: "live"}
    assert _tables(platform) == {"chunk_index_v2", "chunk_index_v3"}

    rolled = rollback_pgvector_index(platform.db)
    view, rows = _state(platform)
    assert rolled.version == 2 and "chunk_index_v2" in view and rows[2] == "live" and rows[3] == "previous"


def test_a_failed_check_leaves_the_live_index_untouched(platform: Platform) -> None:
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    with pytest.raises(IndexCheckFailed, match=r"recall@10 1\.000 against exact search is below 1\.01"):
        rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=IndexChecks(min_recall=1.01))
    view, rows = _state(platform)
    assert "chunk_index_v1" in view and rows == {1: "live", 2: "failed"}
    assert _tables(platform) == {"chunk_index_v1"}
    with platform.db.connect() as conn:
        failure = conn.execute("SELECT checks->>'failure' FROM index_versions WHERE version = 2").fetchone()[0]  # type: ignore[index]
    assert "below 1.01" in failure
    assert platform.retriever_named("dense").search("patients", k=2)


def test_the_recall_gate_measures_a_corrupt_hnsw_index_as_bad(platform: Platform) -> None:
    """An HNSW index left stale while every row's vector moved to another row: its searches return
    wrong neighbours, and the gate (at the default, allowed threshold) says so; a sound copy passes."""
    with platform.db.connect() as conn:
        for table in ("sound", "corrupt"):
            conn.execute(f"CREATE TABLE {table} AS SELECT chunk_id, embedding FROM chunk_index")  # noqa: S608
            conn.execute(f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)")
        conn.commit()
        conn.execute("UPDATE pg_index SET indisready = false WHERE indexrelid = 'corrupt_hnsw'::regclass")
        conn.commit()
        conn.execute(
            """UPDATE corrupt c SET embedding = s.next FROM (
                   SELECT chunk_id, coalesce(lead(embedding) OVER w, first_value(embedding) OVER w) AS next
                   FROM corrupt WINDOW w AS (ORDER BY md5(chunk_id))) s
               WHERE s.chunk_id = c.chunk_id"""
        )
        conn.execute("UPDATE pg_index SET indisready = true WHERE indexrelid = 'corrupt_hnsw'::regclass")
        conn.commit()
        checks = IndexChecks()
        assert checks.min_recall == Settings().index_min_recall  # the threshold users get
        sound = measure_recall(conn, "sound", checks)
        corrupt = measure_recall(conn, "corrupt", checks)
    assert sound >= checks.min_recall
    assert corrupt < 0.5
    _, failure = check_results(10, 10, lambda: corrupt, min_recall=checks.min_recall, k=checks.k)
    assert failure is not None and "below 0.95" in failure


def test_incremental_sync_after_an_edit_touches_only_the_difference(platform: Platform, tmp_path: Path) -> None:
    corpus = platform.settings.corpus_dir
    lines = (corpus / "docs.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] += "\n\nA new closing paragraph about zebrafish migration."
    (corpus / "docs.jsonl").write_text("\n".join([json.dumps(first), *lines[1:-1]]) + "\n")
    stats = build_indexes(platform)
    assert stats.index.mode == "incremental" and stats.index.version == 1
    assert stats.ingest.updated == 1 and stats.ingest.deleted == 1
    assert stats.index.inserted >= 1 and stats.index.deleted >= stats.index.inserted
    hits = platform.retriever_named("sparse").search("zebrafish migration", k=3)
    assert hits and hits[0].doc_id == first["id"]
    # The sync kept the lexicon's counts exact: they equal a recount of the live table.
    with platform.db.connect() as conn:
        kept = dict(conn.execute("SELECT word, ndoc FROM chunk_lexicon").fetchall())
        recount = dict(conn.execute("SELECT word, ndoc FROM ts_stat('SELECT tsv FROM chunk_index')").fetchall())
        length = conn.execute(
            "SELECT (checks->>'text_length')::bigint, (SELECT sum(length(tsv)) FROM chunk_index)"
            " FROM index_versions WHERE status = 'live' AND backend = 'pgvector'"
        ).fetchone()
    assert kept == recount and kept["zebrafish"] == 1
    assert length is not None and length[0] == length[1]


def test_readers_never_fail_or_see_an_empty_index_during_a_rebuild(platform: Platform) -> None:
    import threading

    model, dim = platform.embedder.model_name, platform.embedder.dimension
    retriever = platform.retriever_named("hybrid")
    vector = platform.embedder.embed(["patients treated in hospital"])[0]
    done = threading.Event()
    counts: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        while not done.is_set():
            try:
                counts.append(len(retriever.search_with_vector("patients treated in hospital", vector, 5)))  # type: ignore[attr-defined]
            except BaseException as error:
                errors.append(error)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(2):
            rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=IndexChecks())
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert len(counts) > 10 and set(counts) == {5}


def test_chunks_without_a_vector_stop_the_index_and_are_counted(platform: Platform) -> None:
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    with platform.db.connect() as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]  # type: ignore[index]
        hashes = [r[0] for r in conn.execute("SELECT DISTINCT text_hash FROM chunks ORDER BY 1 LIMIT 2")]
        conn.execute("DELETE FROM embeddings WHERE model = %s AND text_hash = ANY(%s)", (model, hashes))
        lacking = conn.execute("SELECT count(*) FROM chunks WHERE text_hash = ANY(%s)", (hashes,)).fetchone()[0]  # type: ignore[index]
        conn.commit()
    assert 2 <= lacking < chunks
    for build in (sync_pgvector_index, rebuild_pgvector_index):
        with pytest.raises(IndexNotReady, match=f"^{lacking} chunks have no vector for model {model}"):
            build(platform.db, model=model, dim=dim, checks=IndexChecks())
    assert _state(platform)[1] == {1: "live"}  # no version was started


def _edit_first_document(platform: Platform, sentence: str, *, drop_last: bool = False) -> str:
    corpus = platform.settings.corpus_dir
    lines = (corpus / "docs.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] += f"\n\n{sentence}"
    kept = lines[1:-1] if drop_last else lines[1:]
    (corpus / "docs.jsonl").write_text("\n".join([json.dumps(first), *kept]) + "\n")
    return str(first["id"])


def _index_matches_chunks(platform: Platform) -> bool:
    with platform.db.connect() as conn:
        index = set(conn.execute("SELECT chunk_id, doc_hash FROM chunk_index").fetchall())
        chunks = set(conn.execute("SELECT chunk_id, doc_hash FROM chunks").fetchall())
    return index == chunks


def test_a_sync_compares_only_the_chunks_written_or_removed_since_the_last(platform: Platform) -> None:
    model, dim = platform.embedder.model_name, platform.embedder.dimension
    first = sync_pgvector_index(platform.db, model=model, dim=dim)  # the version's first sync: every chunk
    assert first.compared is None and (first.inserted, first.deleted) == (0, 0)
    assert sync_pgvector_index(platform.db, model=model, dim=dim).compared == 0
    with platform.db.connect() as conn:
        chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]  # type: ignore[index]

    doc_id = _edit_first_document(platform, "A closing paragraph about zebrafish migration.", drop_last=True)
    build = build_indexes(platform)  # the last document's chunks go by cascade: noted all the same
    assert build.ingest.deleted == 1
    stats = build.index
    assert stats.compared is not None  # the document's old and new chunks: an unchanged text keeps its id
    assert max(stats.inserted, stats.deleted) <= stats.compared <= stats.inserted + stats.deleted
    assert 0 < stats.compared < chunks / 4 and stats.inserted >= 1
    assert _index_matches_chunks(platform)
    hits = platform.retriever_named("sparse").search("zebrafish migration", k=3)
    assert hits and hits[0].doc_id == doc_id


def test_a_sync_that_fails_keeps_its_notes_and_a_rolled_back_version_is_compared_whole(platform: Platform) -> None:
    from sage_platform.chunking import chunk_documents
    from sage_platform.ingest import ingest_corpus

    model, dim = platform.embedder.model_name, platform.embedder.dimension
    sync_pgvector_index(platform.db, model=model, dim=dim)
    _edit_first_document(platform, "A closing paragraph about axolotl regeneration.")
    settings = platform.settings
    ingest_corpus(platform.db, settings.corpus_dir, max_document_bytes=settings.max_document_bytes)
    chunk_documents(platform.db, platform.splitter, default_language=settings.text_search_language)  # not embedded
    with pytest.raises(IndexNotReady):
        sync_pgvector_index(platform.db, model=model, dim=dim)
    stats = build_indexes(platform).index  # embeds, then syncs what the failed sync had noted
    assert stats.compared is not None and stats.inserted >= 1 and _index_matches_chunks(platform)

    rebuild_pgvector_index(platform.db, model=model, dim=dim, checks=IndexChecks())  # version 2
    _edit_first_document(platform, "A closing paragraph about tardigrade survival.")
    assert build_indexes(platform).index.compared is None  # version 2's first sync
    rollback_pgvector_index(platform.db)  # version 1 again: it missed the tardigrade edit
    assert not _index_matches_chunks(platform)
    caught_up = sync_pgvector_index(platform.db, model=model, dim=dim)
    assert caught_up.compared is None and caught_up.inserted >= 1 and _index_matches_chunks(platform)
