"""A file's content type from its first bytes, not from the name or the header a client sent.

Usage::

    sniff(b"%PDF-1.7 ...")      # "application/pdf"
"""

from __future__ import annotations

SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


def sniff(data: bytes, name: str = "") -> str:
    """The type the bytes are; text is told apart by its name only among text types (Markdown, JSON)."""
    for signature, kind in SIGNATURES:
        if data.startswith(signature):
            return kind
    head = data[:1024].lstrip().lower()
    if head.startswith(HTML_STARTS):
        return "text/html"
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(data[:65536]) - 4:  # not just a character cut at the sample's end
            return "application/octet-stream"
    if b"\x00" in data[:65536]:
        return "application/octet-stream"
    lowered = name.lower()
    if lowered.endswith((".md", ".markdown")):
        return "text/markdown"
    if lowered.endswith(".json") and head.startswith((b"{", b"[")):
        return "application/json"
    return "text/plain"
