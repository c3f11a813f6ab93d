"""Small helpers for asset metadata: Markdown preview tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import MetadataValue


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, width: int = 80) -> MetadataValue:
    def cell(value: Any) -> str:
        text = " ".join(str(value).split()).replace("|", "\\|")
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines) if rows else "_nothing to show_")
