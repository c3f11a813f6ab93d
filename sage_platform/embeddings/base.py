"""The Embedder protocol: what the pipeline needs from any embedding model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from sage_platform.tokenization import Tokenizer


class Embedder(Protocol):
    model_name: str  # stored with every vector; a new name re-embeds everything
    batch_size: int

    @property
    def dimension(self) -> int: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 vectors with unit L2 norm (cosine-ready)."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)
