"""Keep ``chunks`` in step with ``documents``: only documents whose content (or the chunker) changed
are split again, each replaced in one transaction.

Usage::

    stats = chunk_documents(db, ChunkSplitter(tokenizer, 200, 32))
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sage_platform._faults import crash_point
from sage_platform.chunking.splitter import ChunkSplitter
from sage_platform.db import Database
from sage_platform.hashing import text_hash
from sage_platform.text_search import DEFAULT_CONFIG, searchable_text, text_search_config

DOCS_PER_TRANSACTION = 64


@dataclass
class ChunkStats:
    documents_chunked: int = 0
    chunks_written: int = 0
    chunks_removed: int = 0
    chunks_total: int = 0
    tokens_total: int = 0


def chunk_id(doc_id: str, position: int, chunk_text_hash: str) -> str:
    """Stable: the same document, position and text always give the same id."""
    return hashlib.sha256(f"{doc_id}\x00{position}\x00{chunk_text_hash}".encode()).hexdigest()[:32]


def chunks_fingerprint(chunker: str, language: str) -> str:
    """Changes whenever a document's stored chunks would differ: cut differently, or searched in another language."""
    return f"{chunker}:fts={language}"


def chunk_documents(
    db: Database,
    splitter: ChunkSplitter,
    *,
    default_language: str = DEFAULT_CONFIG,
    progress: Callable[[int, int], None] | None = None,
) -> ChunkStats:
    """Split changed documents; each chunk also gets its text-search configuration (per document:
    declared ``language``/``lang`` metadata, else detected CJK, else ``default_language``)."""
    stats = ChunkStats()
    fingerprint = chunks_fingerprint(splitter.fingerprint, default_language)
    with db.connect() as conn:
        pending = [
            row[0]
            for row in conn.execute(
                """SELECT doc_id FROM documents
                   WHERE chunked_hash IS DISTINCT FROM content_hash OR chunker IS DISTINCT FROM %s
                   ORDER BY doc_id""",
                (fingerprint,),
            )
        ]
        for offset in range(0, len(pending), DOCS_PER_TRANSACTION):
            batch = pending[offset : offset + DOCS_PER_TRANSACTION]
            docs = conn.execute(
                """SELECT doc_id, text, content_hash, coalesce(metadata->>'language', metadata->>'lang')
                   FROM documents WHERE doc_id = ANY(%s) ORDER BY doc_id""",
                (batch,),
            ).fetchall()
            pieces = splitter.split_many([text for _, text, _, _ in docs])
            removed = conn.execute("DELETE FROM chunks WHERE doc_id = ANY(%s)", (batch,)).rowcount
            stats.chunks_removed += max(removed, 0)
            columns = "chunk_id, doc_id, position, text, text_hash, token_count, doc_hash, ts_config, search_text"
            with conn.cursor().copy(f"COPY chunks ({columns}) FROM STDIN") as copy:
                for (doc_id, text, content_hash, language), chunks in zip(docs, pieces, strict=True):
                    config = text_search_config(text, language, default_language)
                    for chunk in chunks:
                        digest = text_hash(chunk.text)
                        copy.write_row((chunk_id(doc_id, chunk.position, digest), doc_id, chunk.position, chunk.text,
                                        digest, chunk.token_count, content_hash, config,
                                        searchable_text(chunk.text, config)))  # fmt: skip
                        stats.chunks_written += 1
            # Record the hash that was actually split, in case the document changed meanwhile.
            conn.execute(
                """UPDATE documents d SET chunked_hash = v.hash, chunker = %s
                   FROM unnest(%s::text[], %s::text[]) AS v(doc_id, hash) WHERE d.doc_id = v.doc_id""",
                (fingerprint, [d[0] for d in docs], [d[2] for d in docs]),
            )
            conn.commit()
            stats.documents_chunked += len(docs)
            crash_point("document_chunks.batch")
            if progress:
                progress(stats.documents_chunked, len(pending))
        total = conn.execute("SELECT count(*), coalesce(sum(token_count), 0) FROM chunks").fetchone()
        stats.chunks_total, stats.tokens_total = (int(total[0]), int(total[1])) if total else (0, 0)
    return stats
