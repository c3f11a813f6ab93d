"""Structure-aware, content-defined chunking with token overlap.

Text is cut into paragraphs (blank-line separated); a paragraph longer than a chunk is cut into
token windows. Paragraphs are packed into chunks of at most ``size`` tokens. A chunk may also end
early, once it holds half its budget, after a paragraph whose content hash says so. Those
content-defined cut points do not move when text before them changes, so an edit to one
paragraph changes only the chunks around it: the rest keep their exact text, and their vectors.
Each chunk starts with the last ``overlap`` tokens of the chunk before it.

Usage::

    splitter = ChunkSplitter(tokenizer, size=200, overlap=32)
    for chunk in splitter.split(text):
        chunk.text, chunk.token_count
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from sage_platform.tokenization import Tokenizer

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_CUT_ONE_IN = 3  # content-defined cut points: about one paragraph boundary in three
VERSION = "cdc1"


@dataclass(frozen=True)
class ChunkText:
    position: int
    text: str
    token_count: int
    start: int
    end: int


@dataclass(frozen=True)
class _Unit:
    spans: np.ndarray  # token character spans, absolute in the document
    cut_after: bool

    @property
    def start(self) -> int:
        return int(self.spans[0, 0])

    @property
    def end(self) -> int:
        return int(self.spans[-1, 1])


def chunker_fingerprint(tokenizer_name: str, size: int, overlap: int) -> str:
    return f"{VERSION}:{tokenizer_name}:{size}:{overlap}"


class ChunkSplitter:
    def __init__(self, tokenizer: Tokenizer, size: int, overlap: int) -> None:
        if size <= 2 * overlap:
            raise ValueError(f"chunk size {size} must exceed twice the overlap {overlap}")
        self.tokenizer = tokenizer
        self.size = size
        self.overlap = overlap
        self.budget = size - overlap  # new tokens per chunk; the overlap fills the rest

    @property
    def fingerprint(self) -> str:
        """Changes whenever the same text would be cut differently."""
        return chunker_fingerprint(self.tokenizer.name, self.size, self.overlap)

    def split(self, text: str) -> list[ChunkText]:
        return self.split_many([text])[0]

    def split_many(self, texts: list[str]) -> list[list[ChunkText]]:
        """Split several documents with one batched tokenizer call."""
        paragraphs = [_paragraph_spans(text) for text in texts]
        flat = [text[a:b] for text, spans in zip(texts, paragraphs, strict=True) for a, b in spans]
        token_spans = iter(self.tokenizer.spans(flat))
        out = []
        for text, spans in zip(texts, paragraphs, strict=True):
            units: list[_Unit] = []
            for start, end in spans:
                tokens = next(token_spans)
                if len(tokens):
                    units.extend(self._units(text[start:end], tokens + start))
            out.append(self._pack(text, units))
        return out

    def _units(self, paragraph: str, tokens: np.ndarray) -> list[_Unit]:
        windows = [tokens[i : i + self.budget] for i in range(0, len(tokens), self.budget)]
        cut = _content_cut(paragraph)
        return [_Unit(w, cut or i < len(windows) - 1) for i, w in enumerate(windows)]

    def _pack(self, text: str, units: list[_Unit]) -> list[ChunkText]:
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        count = 0
        for unit in units:
            n = len(unit.spans)
            if current and count + n > self.budget:
                groups.append(current)
                current, count = [], 0
            current.append(unit)
            count += n
            if unit.cut_after and count >= self.budget // 2:
                groups.append(current)
                current, count = [], 0
        if current:
            groups.append(current)

        chunks: list[ChunkText] = []
        previous: np.ndarray | None = None
        for position, group in enumerate(groups):
            tokens = np.concatenate([u.spans for u in group])
            head = previous[-self.overlap :] if previous is not None and self.overlap else tokens[:0]
            start = int(head[0, 0]) if len(head) else group[0].start
            end = group[-1].end
            chunks.append(ChunkText(position, text[start:end], len(head) + len(tokens), start, end))
            previous = tokens
        return chunks


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _content_cut(paragraph: str) -> bool:
    digest = hashlib.blake2b(paragraph.strip().encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % _CUT_ONE_IN == 0
