"""The content-addressed vector store: one vector per (model, text hash).

Only chunk texts never embedded with the current model are embedded. A chunk that keeps its text
when its document is edited, or that moves, reuses its vector. Vectors of other models are
retired once the current model covers every chunk, and vectors no chunk uses are dropped.

Usage::

    stats = embed_missing_chunks(db, embedder)
    stats.embedded, stats.reused
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sage_platform._faults import crash_point
from sage_platform.db import Database
from sage_platform.db.copy_binary import vector_rows_pieces
from sage_platform.embeddings.base import Embedder

TEXTS_PER_COMMIT = 256


@dataclass
class EmbedStats:
    embedded: int = 0
    reused: int = 0
    retired: int = 0
    orphans_dropped: int = 0
    chunks: int = 0
    seconds_embedding: float = 0.0
    seconds_writing: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.embedded / self.seconds_embedding if self.seconds_embedding else 0.0


def embed_missing_chunks(
    db: Database,
    embedder: Embedder,
    *,
    texts_per_commit: int = TEXTS_PER_COMMIT,
    progress: Callable[[int, int, float], None] | None = None,
) -> EmbedStats:
    """Embed every chunk text the current model lacks, then tidy the store: the whole step in one call."""
    stats = embed_shard(db, embedder, texts_per_commit=texts_per_commit, progress=progress)
    stats.retired, stats.orphans_dropped = tidy_embeddings(db, embedder.model_name)
    with db.connect() as conn:
        counts = conn.execute("SELECT count(*), count(DISTINCT text_hash) FROM chunks").fetchone()
    stats.chunks, distinct = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    stats.reused = distinct - stats.embedded
    return stats


def count_missing(db: Database, model: str) -> int:
    """Distinct chunk texts with no vector from ``model``."""
    with db.connect() as conn:
        row = conn.execute(
            """SELECT count(DISTINCT c.text_hash) FROM chunks c
               WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = %s AND e.text_hash = c.text_hash)""",
            (model,),
        ).fetchone()
    return int(row[0]) if row else 0


def embed_shard(
    db: Database,
    embedder: Embedder,
    *,
    shard: int = 0,
    shards: int = 1,
    texts_per_commit: int = TEXTS_PER_COMMIT,
    progress: Callable[[int, int, float], None] | None = None,
) -> EmbedStats:
    """Embed the missing texts of one shard (text hashes split ``shards`` ways by their first hex digits).

    Shards are disjoint, so processes embedding different shards of the same model never write the same
    row; each commits every ``texts_per_commit`` texts, so a killed shard resumes where it stopped.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    stats = EmbedStats()
    model = embedder.model_name
    dimension = embedder.dimension  # loads the model now, outside the timed loop
    with db.connect() as conn:
        missing = conn.execute(
            """SELECT DISTINCT ON (c.text_hash) c.text_hash, c.text FROM chunks c
               WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model = %s AND e.text_hash = c.text_hash)
                 AND ('x' || substr(c.text_hash, 1, 7))::bit(28)::int %% %s = %s
               ORDER BY c.text_hash""",
            (model, shards, shard),
        ).fetchall()
        # Similar lengths side by side pad less; the model sorts within each call as well.
        missing.sort(key=lambda row: len(row[1]))
        conn.execute(
            """CREATE TEMP TABLE IF NOT EXISTS embedding_staging (text_hash text, embedding vector)
               ON COMMIT DELETE ROWS"""
        )
        conn.commit()
        for start in range(0, len(missing), texts_per_commit):
            group = missing[start : start + texts_per_commit]
            began = time.perf_counter()
            vectors = embedder.embed([text for _, text in group])
            written = time.perf_counter()
            stats.seconds_embedding += written - began
            with conn.cursor().copy("COPY embedding_staging (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                for piece in vector_rows_pieces([digest for digest, _ in group], vectors):
                    copy.write(piece)
            conn.execute(
                """INSERT INTO embeddings (model, text_hash, dim, embedding)
                   SELECT %s, text_hash, %s, embedding FROM embedding_staging
                   ON CONFLICT (model, text_hash) DO NOTHING""",
                (model, dimension),
            )
            conn.commit()
            stats.seconds_writing += time.perf_counter() - written
            stats.embedded += len(group)
            crash_point("chunk_embeddings.batch")
            if progress:
                progress(stats.embedded, len(missing), stats.chunks_per_second)
    return stats


def tidy_embeddings(db: Database, model: str) -> tuple[int, int]:
    """Retire other models' vectors and drop vectors no chunk uses: (retired, dropped).

    Run once every shard is done: before that, another model's vectors may still be the live ones.
    """
    with db.connect() as conn:
        retired = max(conn.execute("DELETE FROM embeddings WHERE model <> %s", (model,)).rowcount, 0)
        dropped = max(
            conn.execute(
                """DELETE FROM embeddings e WHERE e.model = %s
                   AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.text_hash = e.text_hash)""",
                (model,),
            ).rowcount,
            0,
        )
    return retired, dropped
