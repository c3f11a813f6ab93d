"""Incremental ingestion of a corpus folder into ``documents``.

Unchanged files (same bytes) are skipped without parsing; changed ones are re-parsed and their
documents replaced; files gone from the corpus lose their documents, chunks and vectors. Each
file is applied in one transaction, so a reader sees a document's old or new version, never half.
A file that cannot be used lands in ``rejected_documents`` with the reason; if it had a good
version before, that version stays until the file is fixed or deleted.

Only regular files are read, never through a link (``safe_files``), and every file is parsed in a
worker process with time and memory limits (``isolation``): whatever one file does, it is rejected
with a reason and the run goes on. A run that would delete more than ``max_delete_fraction`` of the
documents (an empty or unmounted folder) stops before changing anything, naming the folder and counts.

Usage::

    stats = ingest_corpus(db, Path("corpus"), max_document_bytes=20_000_000)
    stats.added, stats.updated, stats.deleted, stats.rejected
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from sage_platform._faults import crash_point
from sage_platform.db import Database
from sage_platform.hashing import json_hash, sha256_bytes
from sage_platform.ingest.isolation import ParserLimits, ParserProcess, kept_parser
from sage_platform.ingest.readers import SUPPORTED_SUFFIXES, ParsedDocument, Rejected
from sage_platform.ingest.safe_files import not_regular, read_regular_file

NOT_READ = "-"  # content hash of a file rejected before its bytes were read


class MassDeletion(RuntimeError):
    """A run would delete more of the corpus than ``max_delete_fraction`` allows."""


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
    """``(relative posix path, path)`` of every candidate file, hidden folders skipped, sorted.

    Links to folders are listed as files (and rejected as links), never walked into."""
    for root, dirs, files in os.walk(corpus_dir):
        linked = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in linked)
        for name in sorted([*files, *linked]):
            if not name.startswith("."):
                path = Path(root, name)
                yield path.relative_to(corpus_dir).as_posix(), path


def ingest_corpus(
    db: Database,
    corpus_dir: Path,
    *,
    max_document_bytes: int,
    progress: Callable[[int, str], None] | None = None,
    max_delete_fraction: float = 0.5,
    parser_limits: ParserLimits | None = None,
    extra_roots: Mapping[str, Path] | None = None,
) -> IngestStats:
    """Ingest ``corpus_dir``, and each of ``extra_roots`` (prefix → folder, e.g. the staged inbox) as
    ``<prefix>/<path>``: one set of documents, one deletion check."""
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist (set SAGE_CORPUS_DIR)")
    stats = IngestStats()
    files = list(iter_corpus_files(corpus_dir))  # walked once: the deletion check and the run see the same
    for prefix, root in sorted((extra_roots or {}).items()):
        if root.is_dir():
            files += [(f"{prefix}/{rel}", path) for rel, path in iter_corpus_files(root)]
    candidates = [(rel, path) for rel, path in files if rel.lower().endswith(SUPPORTED_SUFFIXES)]
    stats.files_ignored = len(files) - len(candidates)
    with db.connect() as conn, kept_parser(parser_limits) as parser:
        known = dict(conn.execute("SELECT path, file_hash FROM source_files").fetchall())
        _check_deletions(conn, corpus_dir, sorted(set(known) - {rel for rel, _ in candidates}), max_delete_fraction)
        seen: set[str] = set()
        for rel, path in candidates:
            stats.files_seen += 1
            seen.add(rel)
            _ingest_file(conn, parser, rel, path, known.get(rel), max_document_bytes, stats)
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


def _check_deletions(conn: psycopg.Connection, corpus_dir: Path, gone: list[str], max_fraction: float) -> None:
    """Refuse, before anything changes, a run that would delete over ``max_fraction`` of the documents."""
    if not gone or max_fraction >= 1:
        return
    row = conn.execute("SELECT count(*) FILTER (WHERE source = ANY(%s)), count(*) FROM documents", (gone,)).fetchone()
    deleting, total = (row[0], row[1]) if row else (0, 0)
    if total and deleting / total > max_fraction:
        raise MassDeletion(
            f"refusing to delete {deleting:,} of {total:,} documents ({deleting / total:.0%}): {len(gone):,} files "
            f"are gone from {corpus_dir}. Is the folder empty or unmounted? If the deletion is meant, run once with "
            f"SAGE_MAX_DELETE_FRACTION=1 (now {max_fraction:g})."
        )


def _ingest_file(
    conn: psycopg.Connection,
    parser: ParserProcess,
    rel: str,
    path: Path,
    known_hash: str | None,
    max_bytes: int,
    stats: IngestStats,
) -> None:
    try:
        data = read_regular_file(path, max_bytes)
    except Rejected as error:
        size = _size_or_none(path)
        _reject(conn, rel, [(rel, str(error))], NOT_READ, size, stats)
        return
    stats.bytes_read += len(data)
    file_hash = sha256_bytes(data)
    if file_hash == known_hash:
        stats.files_unchanged += 1
        return
    try:
        result = parser.parse(rel, data)
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


def _size_or_none(path: Path) -> int | None:
    try:
        mode_and_size = os.lstat(path)
    except OSError:
        return None
    return mode_and_size.st_size if not_regular(mode_and_size.st_mode) is None else None


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
