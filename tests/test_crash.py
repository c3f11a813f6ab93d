"""SIGKILL in the middle of each asset, then a re-run: no duplicate and no missing chunk or vector, and
every table the pipeline writes equal to a clean run's."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from sage_platform.chunking import ChunkSplitter, chunk_id
from sage_platform.config import Settings
from sage_platform.db import Database
from sage_platform.embeddings.local import LocalEmbedder
from sage_platform.hashing import text_hash
from tests.conftest import create_database, write_pubmedqa

CRASH_POINTS = [
    "raw_documents.file:40",  # after 40 of 80 files
    "document_chunks.batch:1",  # after the first of two transactions
    "chunk_embeddings.batch:3",  # after three commits of vectors
    "pgvector_index.loaded:1",  # table loaded, HNSW not yet built, not yet swapped in
]


def _materialize(env: dict[str, str], crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    run_env = {**os.environ, **env, "SAGE_EMBEDDING_COMMIT_EVERY": "16"}
    if crash_at:
        run_env["SAGE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "sage_platform.cli", "materialize", "--log-level", "WARNING"],
        env=run_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_kill_in_every_asset_then_rerun_leaves_no_duplicates_and_no_gaps(
    env: dict[str, str], settings: Settings, db: Database, tmp_path: Path, pg_server: str
) -> None:
    write_pubmedqa(settings.corpus_dir, settings.eval_set, 80, as_files=True)
    # Dagster's runs go to the same real PostgreSQL database, through the shipped dagster.yaml.
    env = {**env, "SAGE_DAGSTER_DATABASE_URL": env["SAGE_DATABASE_URL"]}
    for point in CRASH_POINTS:
        killed = _materialize(env, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
    finished = _materialize(env)
    assert finished.returncode == 0, finished.stderr[-3000:]

    # What a clean run would hold: every file a document, every document's chunks, one vector each.
    splitter = ChunkSplitter(LocalEmbedder().tokenizer, settings.chunk_size, settings.chunk_overlap)
    expected: set[str] = set()
    for path in sorted(settings.corpus_dir.iterdir()):
        text = path.read_text().strip()
        for chunk in splitter.split(text):
            expected.add(chunk_id(path.name, chunk.position, text_hash(chunk.text)))
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (80,)
        assert conn.execute(
            "SELECT count(*) FROM documents WHERE chunked_hash IS DISTINCT FROM content_hash"
        ).fetchone() == (0,)
        assert {row[0] for row in conn.execute("SELECT chunk_id FROM chunks")} == expected
        assert {row[0] for row in conn.execute("SELECT chunk_id FROM chunk_index")} == expected
        missing = conn.execute(
            "SELECT count(*) FROM chunks c LEFT JOIN embeddings e USING (text_hash) WHERE e.text_hash IS NULL"
        ).fetchone()
        assert missing == (0,)
        assert (
            conn.execute("SELECT count(*), count(DISTINCT (model, text_hash)) FROM embeddings").fetchone()
            == conn.execute("SELECT count(DISTINCT text_hash), count(DISTINCT text_hash) FROM chunks").fetchone()
        )
        # A killed index build leaves its chunk_index_v<N> table and a 'building' row: the re-run must not.
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'chunk_index_v%'")}
        versions = dict(conn.execute("SELECT name, status FROM index_versions WHERE backend = 'pgvector'").fetchall())
        kept = {name for name, status in versions.items() if status in ("live", "previous")}
        assert tables == kept | {f"{name}_lexicon" for name in kept}, versions
        assert "building" not in versions.values(), versions  # the killed build is recorded as failed
        # Every stored vector is the one a clean run computes for that chunk text.
        stored = conn.execute(
            "SELECT c.text, e.embedding FROM (SELECT DISTINCT ON (text_hash) text_hash, text FROM chunks) c"
            " JOIN embeddings e USING (text_hash) ORDER BY c.text_hash"
        ).fetchall()
    clean = LocalEmbedder().embed([text for text, _ in stored])
    assert np.allclose(np.vstack([vector.to_numpy() for _, vector in stored]), clean, atol=1e-4)

    # Every table the pipeline writes equals a clean run's over the same corpus, in another database.
    clean_url = create_database(pg_server)
    clean_env = {**env, "SAGE_DATABASE_URL": clean_url, "SAGE_DAGSTER_DATABASE_URL": clean_url}
    assert _materialize(clean_env).returncode == 0
    exact = {
        "documents": "SELECT doc_id, source, text, content_hash, metadata, chunked_hash FROM documents",
        "chunks": "SELECT chunk_id, doc_id, position, text, text_hash, token_count, doc_hash, ts_config FROM chunks",
        "index rows": "SELECT chunk_id, doc_id, position, text, title, source, metadata, doc_hash, ts_config::text,"
        " tsv::text FROM chunk_index",
        "lexicon": "SELECT word, ndoc FROM chunk_lexicon",
    }
    vectors = {
        "embeddings": "SELECT model || ' ' || text_hash, embedding FROM embeddings",
        "index vectors": "SELECT chunk_id, embedding FROM chunk_index",
    }
    with psycopg.connect(env["SAGE_DATABASE_URL"]) as resumed, psycopg.connect(clean_url) as fresh:
        register_vector(resumed)
        register_vector(fresh)
        for name, query in exact.items():
            assert sorted(resumed.execute(query).fetchall()) == sorted(fresh.execute(query).fetchall()), name
        for name, query in vectors.items():
            ours, theirs = dict(resumed.execute(query).fetchall()), dict(fresh.execute(query).fetchall())
            assert ours.keys() == theirs.keys(), name
            # Batches differ between a resumed and a clean run; the model's padding moves the last digits.
            assert all(np.allclose(ours[k].to_numpy(), theirs[k].to_numpy(), atol=1e-5) for k in ours), name
