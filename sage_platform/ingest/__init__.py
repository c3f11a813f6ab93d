"""Corpus ingestion: readers per format, content hashes, rejects."""

from sage_platform.ingest.corpus import IngestStats, ingest_corpus, iter_corpus_files
from sage_platform.ingest.readers import SUPPORTED_SUFFIXES, ParsedDocument, Rejected, read_document

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestStats",
    "ParsedDocument",
    "Rejected",
    "ingest_corpus",
    "iter_corpus_files",
    "read_document",
]
