"""Tokenizers that report each token's character span, so chunks are exact slices of the text.

Usage::

    tokenizer = HuggingFaceTokenizer.from_file(model_dir / "tokenizer.json")
    spans = tokenizer.spans(["Hello world"])[0]   # array([[0, 5], [6, 11]])
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Tokenizer(Protocol):
    name: str

    def spans(self, texts: list[str]) -> list[np.ndarray]:
        """Per text, an ``(n_tokens, 2)`` int array of ``[start, end)`` character offsets."""
        ...


class HuggingFaceTokenizer:
    """The embedder's own tokenizer (a ``tokenizer.json``), without special tokens or truncation."""

    def __init__(self, backend: object, name: str) -> None:
        self._backend = backend
        self.name = name

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> HuggingFaceTokenizer:
        from tokenizers import Tokenizer as Backend

        backend = Backend.from_file(str(path))
        backend.no_truncation()
        backend.no_padding()
        return cls(backend, name or path.parent.name)

    def spans(self, texts: list[str]) -> list[np.ndarray]:
        encodings = self._backend.encode_batch(texts, add_special_tokens=False)  # type: ignore[attr-defined]
        return [np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encodings]


class CharacterTokenizer:
    """One token per character: the unit for API embedders whose tokenizer is not at hand."""

    name = "chars"

    def spans(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for text in texts:
            starts = np.arange(len(text), dtype=np.int64)
            out.append(np.stack([starts, starts + 1], axis=1))
        return out
