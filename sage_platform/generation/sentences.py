"""Sentence splitting without downloads (nltk's punkt needs one that fails here)."""

from __future__ import annotations

import re

# End of sentence: . ! ? or CJK full stops, then space/newline; or a paragraph break.
_BOUNDARY = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n\s*\n|(?<=[。！？])")
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|Fig|al|Dr|Mr|Mrs|Ms|No)\.$", re.IGNORECASE)


def split_sentences(text: str, *, min_chars: int = 12) -> list[str]:
    sentences: list[str] = []
    pending = ""
    for piece in _BOUNDARY.split(text):
        if not piece or not piece.strip():
            continue
        pending = f"{pending} {piece.strip()}".strip() if pending else piece.strip()
        if not _ABBREVIATIONS.search(pending):
            sentences.append(" ".join(pending.split()))
            pending = ""
    if pending:
        sentences.append(" ".join(pending.split()))
    return [s for s in sentences if len(s) >= min_chars]
