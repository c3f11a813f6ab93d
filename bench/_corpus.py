"""Bulk-load chunks and their vectors straight into the platform's tables (COPY), for benchmarks."""

from __future__ import annotations

import numpy as np
from psycopg.types.json import Jsonb

from sage_platform.chunking import chunk_id
from sage_platform.db import Database
from sage_platform.db.copy_binary import vector_rows_pieces
from sage_platform.hashing import text_hash
from sage_platform.text_search import searchable_text, text_search_config


def load_chunks(db: Database, rows: list[tuple[str, int, str]], vectors: np.ndarray, model: str) -> list[str]:
    """``(doc_id, position, text)`` rows and one vector each; returns the text hashes."""
    dim = vectors.shape[1]
    hashes = [text_hash(text) for _, _, text in rows]
    with db.connect() as conn:
        docs = sorted({doc_id for doc_id, _, _ in rows})
        with conn.cursor().copy("COPY source_files (path, file_hash, size_bytes) FROM STDIN") as copy:
            for doc_id in docs:
                copy.write_row((doc_id, "bench", 0))
        with conn.cursor().copy(
            "COPY documents (doc_id, source, text, content_hash, metadata, size_bytes) FROM STDIN"
        ) as copy:
            for doc_id in docs:
                copy.write_row((doc_id, doc_id, "", "bench", Jsonb({"corpus": doc_id.split("/", 1)[0]}), 0))
        with conn.cursor().copy(
            "COPY chunks (chunk_id, doc_id, position, text, text_hash, token_count, doc_hash, ts_config, search_text)"
            " FROM STDIN"
        ) as copy:
            for (doc_id, position, text), digest in zip(rows, hashes, strict=True):
                config = text_search_config(text)
                copy.write_row((chunk_id(doc_id, position, digest), doc_id, position, text, digest, 0, "bench", config,
                                searchable_text(text, config)))  # fmt: skip
        conn.execute("CREATE TEMP TABLE staging (text_hash text, embedding vector)")
        with conn.cursor().copy("COPY staging (text_hash, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            for piece in vector_rows_pieces(hashes, vectors):
                copy.write(piece)
        conn.execute(
            "INSERT INTO embeddings (model, text_hash, dim, embedding) SELECT %s, text_hash, %s, embedding FROM staging"
            " ON CONFLICT DO NOTHING",
            (model, dim),
        )
    return hashes
