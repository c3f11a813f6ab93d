"""Vectors of recent queries kept in memory: a query asked again is not embedded again.

Retrieval embeds its query on every search. The golden questions are searched for on every
evaluation run, and a process that stays up (the warm worker) asks them again each time; their vectors
come from here after the first. Only short texts (queries, not documents) are kept, the least recently
used going first. Not for a server's searches: one user's remembered query would answer another's
faster, and so tell them it was asked (``Platform.retriever_named(remember_queries=...)``).

Usage::

    queries = QueryEmbedder(embedder, capacity=4096)
    queries.embed(["What is Sage?"])   # embedded by the model
    queries.embed(["What is Sage?"])   # the same vector, remembered
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from sage_platform.embeddings.base import Embedder
from sage_platform.tokenization import Tokenizer

MAX_KEPT_CHARS = 2_000  # longer texts are passages, not queries: embedded every time, never kept


class QueryEmbedder:
    """An ``Embedder`` that remembers up to ``capacity`` vectors of texts it embedded."""

    def __init__(self, embedder: Embedder, capacity: int = 4096) -> None:
        self.embedder = embedder
        self.model_name = embedder.model_name
        self.batch_size = embedder.batch_size
        self.capacity = capacity
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # searches run on many threads (the server's pool, dataflow workers)

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    @property
    def tokenizer(self) -> Tokenizer:
        return self.embedder.tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.embedder.embed([])
        with self._lock:
            found = {text: self._kept[text] for text in texts if text in self._kept}
            for text in found:
                self._kept.move_to_end(text)
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            vectors = np.asarray(self.embedder.embed(missing), dtype=np.float32)
            found.update(zip(missing, vectors, strict=True))
            self._keep(missing, vectors)
        return np.stack([found[text] for text in texts])  # a new array: callers cannot change what is kept

    def forget(self) -> None:
        """Drop every kept vector (the next search embeds its query again)."""
        with self._lock:
            self._kept.clear()

    def _keep(self, texts: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                if len(text) <= MAX_KEPT_CHARS:
                    self._kept[text] = vector.copy()
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)
