"""The inbox: files dropped into ``SAGE_INBOX_DIR`` are staged under ``SAGE_DATA_DIR/inbox`` and ingested.

A file is known by its path and content hash; each (path, hash) is handled once. Readable files are
copied into the staging folder (atomically), which ``raw_documents`` ingests beside the corpus as
``inbox/<path>``: the corpus folder (which may be a source tree) is never written to.
Unreadable ones (unsupported type, too large, permission denied, unparsable) go to
``rejected_documents`` with the reason and are not looked at again until their bytes change.

The sensor only scans; the run it launches stages the files (``stage_files``) and ingests them.

Usage::

    scan = scan_inbox(Path("inbox"), known={}, max_bytes=20_000_000)
    staged, skipped = stage_files({f.path: f.content_hash for f in scan.readable}, Path("inbox"), staging, 20_000_000)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sage_platform.db import Database
from sage_platform.hashing import sha256_bytes, text_hash
from sage_platform.ingest import SUPPORTED_SUFFIXES, Rejected, iter_corpus_files
from sage_platform.ingest.isolation import ParserLimits, ParserProcess, kept_parser
from sage_platform.ingest.safe_files import read_regular_file, write_private_file

STAGED = "inbox"  # the prefix of staged inbox files' document paths


@dataclass(frozen=True)
class InboxFile:
    path: str  # relative to the inbox
    content_hash: str
    size: int
    reason: str | None = None  # why it cannot be ingested; None when it can

    @property
    def run_key(self) -> str:
        return f"{self.path}:{self.content_hash}"


@dataclass
class InboxScan:
    readable: list[InboxFile] = field(default_factory=list)
    unreadable: list[InboxFile] = field(default_factory=list)


def _examine(root: Path, rel: str, max_bytes: int, known_hash: str | None, parser: ParserProcess) -> InboxFile | None:
    """The file as found, or None when its bytes are the ones already handled (not parsed again)."""
    path = root / rel
    try:
        data = read_regular_file(path, max_bytes)
    except Rejected as error:
        marker = f"unreadable:{error}:{rel}"  # the same refusal is reported once, not on every tick
        found = InboxFile(rel, text_hash(marker), 0, f"cannot read: {error}")
        return None if found.content_hash == known_hash else found
    digest = sha256_bytes(data)
    if digest == known_hash:
        return None
    if not rel.lower().endswith(SUPPORTED_SUFFIXES):
        suffix = Path(rel).suffix or "(none)"
        return InboxFile(rel, digest, len(data), f"unsupported type {suffix}: expected {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        result = parser.parse(rel, data)
    except Rejected as error:
        return InboxFile(rel, digest, len(data), f"unparsable: {error}")
    if not result.documents:
        reasons = "; ".join(reason for _, reason in result.rejected_records) or "no text"
        return InboxFile(rel, digest, len(data), f"unparsable: {reasons}")
    return InboxFile(rel, digest, len(data))


def scan_inbox(
    root: Path, known: dict[str, str], max_bytes: int, parser_limits: ParserLimits | None = None
) -> InboxScan:
    """Files whose (path, hash) is not in ``known``, split into readable and unreadable."""
    scan = InboxScan()
    if not root.is_dir():
        return scan
    with kept_parser(parser_limits) as parser:
        for rel, _ in iter_corpus_files(root):  # hidden files (uploads in progress) skipped, links listed
            found = _examine(root, rel, max_bytes, known.get(rel), parser)
            if found is not None:
                (scan.unreadable if found.reason else scan.readable).append(found)
    return scan


def stage(item: InboxFile, root: Path, staging: Path, max_bytes: int) -> Path:
    """Copy into ``staging`` atomically, from the bytes that were checked (read again safely and
    compared by hash: a file swapped for a link since the scan is refused). Mode 0600.

    ``item.path`` may come from a run's config rather than a scan: only a plain relative path is
    staged, so no path reads or writes outside the inbox and the staging folder."""
    parts = PurePosixPath(item.path).parts
    if not parts or item.path.startswith("/") or any(part in ("..", ".") or part.startswith(".") for part in parts):
        raise Rejected(f"{item.path!r} is not a plain path inside the inbox")
    data = read_regular_file(root / item.path, max_bytes)
    if sha256_bytes(data) != item.content_hash:
        raise Rejected(f"{item.path} changed since it was scanned; it will be picked up on the next tick")
    target = staging / item.path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    write_private_file(partial, data)
    partial.replace(target)
    return target


def stage_files(
    files: dict[str, str], root: Path, staging: Path, max_bytes: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage each ``path → content hash``; ``(staged paths, [(path, why not)])``. A file that changed or
    went away since the scan is skipped: its new bytes have a new hash, so the next scan launches it again."""
    staged: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path, content_hash in sorted(files.items()):
        try:
            stage(InboxFile(path, content_hash, 0), root, staging, max_bytes)
        except Rejected as error:
            skipped.append((path, str(error)))
        else:
            staged.append(path)
    return staged, skipped


def record_unreadable(db: Database, items: list[InboxFile]) -> None:
    with db.connect() as conn:
        for item in items:
            conn.execute(
                """INSERT INTO rejected_documents (path, source, content_hash, reason, size_bytes)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (path, content_hash) DO UPDATE SET last_seen = now(), reason = EXCLUDED.reason""",
                (f"{STAGED}/{item.path}", f"{STAGED}/{item.path}", item.content_hash, item.reason, item.size),
            )
