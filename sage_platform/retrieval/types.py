"""What every retriever returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class Retriever(Protocol):
    name: str

    def search(self, query: str, k: int = 10, filters: Mapping[str, str] | None = None) -> list[Hit]: ...

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]: ...


class Reranker(Protocol):
    """Reorders fused candidates; it sees every candidate, so it can lift one from deep in the list."""

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]: ...


def ranked_doc_ids(hits: Sequence[Hit], limit: int) -> list[str]:
    """Distinct document ids in rank order: the unit of retrieval recall and MRR."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.doc_id, None)
        if len(seen) == limit:
            break
    return list(seen)
