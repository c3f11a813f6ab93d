"""Prompt building for grounded answers."""

from __future__ import annotations

from collections.abc import Sequence

from sage_platform.retrieval.types import Hit

SYSTEM_PROMPT = (
    "Answer the question using only the numbered context passages. Be concise. "
    "If the context does not contain the answer, say that you do not know."
)


def rag_messages(question: str, hits: Sequence[Hit]) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{i}] ({hit.doc_id}) {hit.text}" for i, hit in enumerate(hits, start=1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
    ]
