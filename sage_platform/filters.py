"""Retriever names and search filters, with errors that list the valid ones (shared by every backend)."""

from __future__ import annotations

import re
from collections.abc import Mapping

RETRIEVERS = ("dense", "sparse", "hybrid", "elasticsearch")
# Columns of the search table a filter may name; `metadata.<key>` reaches document metadata.
FILTER_COLUMNS = ("doc_id", "source", "title", "language")
_METADATA_KEY = re.compile(r"^metadata\.([A-Za-z0-9_\-]{1,64})$")


def check_retriever_name(name: str) -> str:
    if name not in RETRIEVERS:
        raise ValueError(f"unknown retriever {name!r}; valid: {', '.join(RETRIEVERS)}")
    return name


def split_filters(filters: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """``(column filters, metadata filters)``; an unknown key raises ValueError naming the valid ones."""
    columns: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for key, value in (filters or {}).items():
        if not isinstance(value, str):
            raise ValueError(f"filter {key!r} must have a string value, got {type(value).__name__}")
        if key in FILTER_COLUMNS:
            columns[key] = value
        elif match := _METADATA_KEY.match(key):
            metadata[match.group(1)] = value
        else:
            raise ValueError(f"unknown filter key {key!r}; valid: {', '.join(FILTER_COLUMNS)}, metadata.<name>")
    return columns, metadata


def parse_filter_args(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` from the command line."""
    filters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"a filter is key=value, got {pair!r}")
        filters[key.strip()] = value
    return filters
