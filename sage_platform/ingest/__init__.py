"""Corpus ingestion: readers per format, content hashes, rejects."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sage_platform.ingest.readers import SUPPORTED_SUFFIXES, ParsedDocument, Rejected, read_document

if TYPE_CHECKING:
    from sage_platform.ingest.corpus import IngestStats, ingest_corpus, iter_corpus_files

# The corpus module (database, SQLAlchemy, settings) loads on first use: the parser worker process
# (``python -m sage_platform.ingest.isolation``) imports this package and needs only the readers.
_CORPUS = "sage_platform.ingest.corpus"
_FROM_CORPUS = frozenset({"IngestStats", "ingest_corpus", "iter_corpus_files"})


def __getattr__(name: str) -> Any:
    if name in _FROM_CORPUS:
        return getattr(import_module(_CORPUS), name)
    raise AttributeError(f"module 'sage_platform.ingest' has no attribute {name!r}")


__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestStats",
    "ParsedDocument",
    "Rejected",
    "ingest_corpus",
    "iter_corpus_files",
    "read_document",
]
