"""Any OpenAI-compatible ``/v1/embeddings`` endpoint. Chunk sizes count characters here.

Usage::

    embedder = OpenAIEmbedder("text-embedding-3-small", base_url="http://127.0.0.1:8000/v1", api_key="…")
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from sage_platform.embeddings.base import normalize
from sage_platform.tokenization import CharacterTokenizer


class OpenAIEmbedder:
    tokenizer = CharacterTokenizer()

    def __init__(self, model: str, *, base_url: str, api_key: str | None, batch_size: int = 64) -> None:
        from openai import OpenAI

        self.model_name = model
        self.batch_size = batch_size
        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=5, timeout=120)

    @cached_property
    def dimension(self) -> int:
        return int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            response = self._client.embeddings.create(model=self.model_name, input=batch)
            rows.extend(item.embedding for item in sorted(response.data, key=lambda item: item.index))
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize(np.asarray(rows, dtype=np.float32))
