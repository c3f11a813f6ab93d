"""Incremental ingestion of a corpus folder into ``documents``.

Unchanged files (same bytes) are skipped without parsing; changed ones are re-parsed and their
documents replaced; files gone from the corpus lose their documents, chunks and vectors. Each
file is applied in one transaction, so a reader sees a document's old or new version, never half.
A file that cannot be used lands in ``rejected_documents`` with the reason; if it had a good
version before, that version stays until the file is fixed or deleted.

Usage::

    stats = ingest_corpus(db, Path("docs"), max_document_bytes=20_000_000)
    stats.added, stats.updated, stats.deleted, stats.rejected
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from sage_platform._faults import crash_point
from sage_platform.db import Database
from sage_platform.hashing import json_hash, sha256_bytes
from sage_platform.ingest.readers import SUPPORTED_SUFFIXES, ParsedDocument, Rejected, read_document

NOT_READ = "-"  # content hash of a file rejected before its bytes were read


@dataclass
class IngestStats:
    files_seen: int = 0
    files_unchanged: int = 0
    files_ignored: int = 0
    added: int = 0
    updated: int = 0
    unchanged_documents: int = 0
    deleted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.deleted


def iter_corpus_files(corpus_dir: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, path)`` of every candidate file, hidden folders skipped, sorted."""
    for root, dirs, files in os.walk(corpus_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                path = Path(root, name)
                yield path.relative_to(corpus_dir).as_posix(), path


def ingest_corpus(
    db: Database,
    corpus_dir: Path,
    *,
    max_document_bytes: int,
    progress: Callable[[int, str], None] | None = None,
) -> IngestStats:
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist (set SAGE_CORPUS_DIR)")
    stats = IngestStats()
    with db.connect() as conn:
        known = dict(conn.execute("SELECT path, file_hash FROM source_files").fetchall())
        seen: set[str] = set()
        for rel, path in iter_corpus_files(corpus_dir):
            if not rel.lower().endswith(SUPPORTED_SUFFIXES):
                stats.files_ignored += 1
                continue
            stats.files_seen += 1
            seen.add(rel)
            _ingest_file(conn, rel, path, known.get(rel), max_document_bytes, stats)
            conn.commit()
            crash_point("raw_documents.file")
            if progress:
                progress(stats.files_seen, rel)
        gone = sorted(set(known) - seen)
        if gone:
            deleted = conn.execute("SELECT count(*) FROM documents WHERE source = ANY(%s)", (gone,)).fetchone()
            stats.deleted += deleted[0] if deleted else 0
            conn.execute("DELETE FROM source_files WHERE path = ANY(%s)", (gone,))
        conn.execute("DELETE FROM rejected_documents WHERE NOT (source = ANY(%s))", (sorted(seen),))
    return stats


def _ingest_file(
    conn: psycopg.Connection,
    rel: str,
    path: Path,
    known_hash: str | None,
    max_bytes: int,
    stats: IngestStats,
) -> None:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Rejected(f"oversized: {size} bytes is over SAGE_MAX_DOCUMENT_BYTES={max_bytes}")
        data = path.read_bytes()
    except OSError as error:
        _reject(conn, rel, [(rel, f"unreadable: {error.strerror or error}")], NOT_READ, None, stats)
        return
    except Rejected as error:
        _reject(conn, rel, [(rel, str(error))], NOT_READ, size, stats)
        return
    stats.bytes_read += len(data)
    file_hash = sha256_bytes(data)
    if file_hash == known_hash:
        stats.files_unchanged += 1
        return
    try:
        result = read_document(rel, data)
    except Rejected as error:
        _reject(conn, rel, [(rel, str(error))], file_hash, len(data), stats)
        return
    conn.execute("DELETE FROM rejected_documents WHERE source = %s", (rel,))
    documents, rejects = _drop_foreign_ids(conn, rel, result.documents)
    rejects = result.rejected_records + rejects
    if rejects:
        _reject(conn, rel, rejects, file_hash, len(data), stats, clear=False)
    conn.execute(
        """INSERT INTO source_files (path, file_hash, size_bytes) VALUES (%s, %s, %s)
           ON CONFLICT (path) DO UPDATE SET file_hash = excluded.file_hash,
               size_bytes = excluded.size_bytes, ingested_at = now()""",
        (rel, file_hash, len(data)),
    )
    _replace_documents(conn, rel, documents, stats)


def _drop_foreign_ids(
    conn: psycopg.Connection, rel: str, documents: list[ParsedDocument]
) -> tuple[list[ParsedDocument], list[tuple[str, str]]]:
    """Documents whose id another file already owns are rejected, not silently overwritten."""
    owners: dict[str, str] = dict(
        conn.execute(
            "SELECT doc_id, source FROM documents WHERE doc_id = ANY(%s) AND source <> %s",
            ([d.doc_id for d in documents], rel),
        ).fetchall()
    )
    kept = [d for d in documents if d.doc_id not in owners]
    rejects = [(f"{rel}#{d.doc_id}", f"duplicate id {d.doc_id!r}: already ingested from {owners[d.doc_id]}")
               for d in documents if d.doc_id in owners]  # fmt: skip
    return kept, rejects


def _replace_documents(conn: psycopg.Connection, rel: str, documents: list[ParsedDocument], stats: IngestStats) -> None:
    current: dict[str, str] = dict(
        conn.execute("SELECT doc_id, content_hash FROM documents WHERE source = %s", (rel,)).fetchall()
    )
    ids = [d.doc_id for d in documents]
    removed = conn.execute("DELETE FROM documents WHERE source = %s AND NOT (doc_id = ANY(%s))", (rel, ids)).rowcount
    stats.deleted += max(removed, 0)
    for doc in documents:
        content_hash = json_hash([doc.title, doc.text, doc.metadata])
        previous = current.get(doc.doc_id)
        if previous == content_hash:
            stats.unchanged_documents += 1
            continue
        conn.execute(
            """INSERT INTO documents (doc_id, source, title, text, content_hash, metadata, size_bytes)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (doc_id) DO UPDATE SET title = excluded.title, text = excluded.text,
                   content_hash = excluded.content_hash, metadata = excluded.metadata,
                   size_bytes = excluded.size_bytes, updated_at = now()""",
            (doc.doc_id, rel, doc.title, doc.text, content_hash, Jsonb(doc.metadata),
             len(doc.text.encode("utf-8"))),
        )  # fmt: skip
        if previous is None:
            stats.added += 1
        else:
            stats.updated += 1


def _reject(
    conn: psycopg.Connection,
    source: str,
    rejects: list[tuple[str, str]],
    content_hash: str,
    size: int | None,
    stats: IngestStats,
    *,
    clear: bool = True,
) -> None:
    if clear:
        conn.execute("DELETE FROM rejected_documents WHERE source = %s AND content_hash <> %s", (source, content_hash))
    for location, reason in rejects:
        conn.execute(
            """INSERT INTO rejected_documents (path, source, content_hash, reason, size_bytes)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (path, content_hash) DO UPDATE SET reason = excluded.reason, last_seen = now()""",
            (location, source, content_hash, reason, size),
        )
        stats.rejected.append((location, reason))
