"""Readers per file format. Each turns a file's bytes into documents, or rejects it with a reason.

Usage::

    result = read_document("guide/intro.md", data)
    result.documents[0].doc_id   # "guide/intro.md"
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sage_platform.ingest.html import html_to_text

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl")
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w.:-]+)""", re.IGNORECASE)


class Rejected(Exception):
    """A file or record that cannot be ingested; the message is the reason stored for people."""


@dataclass(frozen=True)
class ReaderLimits:
    """What one file may cost: PDF pages, and characters extracted (in all, and per input byte for PDFs,
    whose compressed streams can expand a few kilobytes into megabytes of text)."""

    max_pdf_pages: int = 1000
    max_chars: int = 20_000_000
    max_pdf_chars_per_byte: int = 100


@dataclass(frozen=True)
class ParsedDocument:
    doc_id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReadResult:
    documents: list[ParsedDocument] = field(default_factory=list)
    # Records rejected inside an otherwise readable file: (location such as "a.jsonl:3", reason).
    rejected_records: list[tuple[str, str]] = field(default_factory=list)


def read_document(rel_path: str, data: bytes, limits: ReaderLimits = ReaderLimits()) -> ReadResult:
    """Parse one corpus file. Raises ``Rejected`` when nothing in it can be used, or it is over a limit."""
    suffix = "." + rel_path.rsplit(".", 1)[-1].lower() if "." in rel_path else ""
    reader = _READERS.get(suffix)
    if reader is None:
        raise Rejected(f"unsupported file type {suffix or '(none)'}")
    if not data.strip():
        raise Rejected("empty file")
    if suffix != ".pdf" and b"\x00" in data[:8192]:
        raise Rejected("binary content (NUL bytes) in a text format")
    try:
        result = reader(rel_path, data, limits)
    except RecursionError:
        raise Rejected("nested too deeply to parse (over about 1,000 levels)") from None
    if not result.documents and not result.rejected_records:
        raise Rejected("no text could be extracted")
    extracted = sum(len(d.text) for d in result.documents)
    if extracted > limits.max_chars:
        raise Rejected(f"{extracted:,} characters extracted, over SAGE_MAX_EXTRACTED_CHARS ({limits.max_chars:,})")
    return result


def _decode(data: bytes, fallback: str | None = None) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if fallback:
            try:
                return data.decode(fallback)
            except (LookupError, UnicodeDecodeError):
                pass
        raise Rejected(f"undecodable: not valid UTF-8 at byte {error.start}") from None


def _single(rel_path: str, text: str, title: str | None) -> ReadResult:
    text = text.strip()
    if not text:
        raise Rejected("no text after extraction")
    return ReadResult([ParsedDocument(rel_path, text, title)])


def _read_text(rel_path: str, data: bytes, limits: ReaderLimits) -> ReadResult:
    text = _decode(data).replace("\r\n", "\n")
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.strip()), None)
    return _single(rel_path, text, title[:300] if title else None)


def _read_html(rel_path: str, data: bytes, limits: ReaderLimits) -> ReadResult:
    declared = _CHARSET.search(data[:4096])
    markup = _decode(data, declared.group(1).decode("ascii") if declared else None)
    title, text = html_to_text(markup)
    return _single(rel_path, text, title)


def _read_pdf(rel_path: str, data: bytes, limits: ReaderLimits) -> ReadResult:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    budget = min(limits.max_chars, limits.max_pdf_chars_per_byte * len(data) + 100_000)
    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > limits.max_pdf_pages:
            raise Rejected(f"{len(reader.pages):,} pages, over SAGE_MAX_PDF_PAGES ({limits.max_pdf_pages:,})")
        pages: list[str] = []
        extracted = 0
        for page in reader.pages:  # page by page, so that a text bomb stops at the first pages
            pages.append(page.extract_text() or "")
            extracted += len(pages[-1])
            if extracted > budget:
                raise Rejected(
                    f"over {budget:,} characters extracted from {len(data):,} bytes after {len(pages)} pages: "
                    "a decompression bomb, or over SAGE_MAX_EXTRACTED_CHARS"
                )
        title = reader.metadata.title if reader.metadata else None
    except (PyPdfError, ValueError, KeyError, TypeError) as error:
        raise Rejected(f"unreadable PDF: {error}") from None
    return _single(rel_path, "\n\n".join(page.strip() for page in pages if page.strip()), title)


def _record(location: str, record: Any) -> ParsedDocument:
    if not isinstance(record, dict):
        raise Rejected(f"{location}: a record must be a JSON object")
    doc_id, text = record.get("id"), record.get("text")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise Rejected(f"{location}: missing or empty 'id'")
    if not isinstance(text, str) or not text.strip():
        raise Rejected(f"{location}: missing or empty 'text'")
    title, metadata = record.get("title"), record.get("metadata", {})
    if title is not None and not isinstance(title, str):
        raise Rejected(f"{location}: 'title' must be a string")
    if not isinstance(metadata, dict):
        raise Rejected(f"{location}: 'metadata' must be an object")
    return ParsedDocument(doc_id.strip(), text.strip(), title, metadata)


def _collect(rel_path: str, located: list[tuple[str, Any]]) -> ReadResult:
    result = ReadResult()
    seen: set[str] = set()
    for location, record in located:
        try:
            document = _record(location, record)
        except Rejected as error:
            result.rejected_records.append((location, str(error)))
            continue
        if document.doc_id in seen:
            result.rejected_records.append((location, f"{location}: duplicate id {document.doc_id!r}"))
            continue
        seen.add(document.doc_id)
        result.documents.append(document)
    return result


def _read_json(rel_path: str, data: bytes, limits: ReaderLimits) -> ReadResult:
    try:
        payload = json.loads(_decode(data))
    except json.JSONDecodeError as error:
        raise Rejected(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    records = payload if isinstance(payload, list) else [payload]
    return _collect(rel_path, [(f"{rel_path}[{i}]", record) for i, record in enumerate(records)])


def _read_jsonl(rel_path: str, data: bytes, limits: ReaderLimits) -> ReadResult:
    located: list[tuple[str, Any]] = []
    bad: list[tuple[str, str]] = []
    for number, line in enumerate(_decode(data).splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{rel_path}:{number}"
        try:
            located.append((location, json.loads(line)))
        except json.JSONDecodeError as error:
            bad.append((location, f"{location}: invalid JSON ({error.msg})"))
    result = _collect(rel_path, located)
    result.rejected_records[:0] = bad
    return result


_READERS: dict[str, Callable[[str, bytes, ReaderLimits], ReadResult]] = {
    ".txt": _read_text,
    ".md": _read_text,
    ".markdown": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}
