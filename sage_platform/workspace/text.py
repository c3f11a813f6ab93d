"""A workspace file's text: decoded, or parsed (PDF, HTML) by the ingestion readers in their isolated worker.

Usage::

    text = extract_text(record, data)     # ValueError for images, archives and other binary files
"""

from __future__ import annotations

from sage_platform.workspace.files import FileRecord

SUFFIX_OF = {"application/pdf": ".pdf", "text/html": ".html"}


def readable(content_type: str) -> bool:
    return content_type in SUFFIX_OF or content_type.startswith("text/") or content_type == "application/json"


def extract_text(record: FileRecord, data: bytes) -> str:
    if record.content_type in SUFFIX_OF:
        from sage_platform.ingest.isolation import kept_parser

        with kept_parser() as parser:
            result = parser.parse(f"file{SUFFIX_OF[record.content_type]}", data)
        return "\n\n".join(d.text for d in result.documents)
    if readable(record.content_type):
        return data.decode("utf-8", errors="replace")
    raise ValueError(f"{record.name} is {record.content_type}: not a text, PDF or HTML file")
