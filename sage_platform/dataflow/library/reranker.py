"""``Reranker``: reorders a record's ``retrieved`` hits for its ``query``.

With ``model`` naming a cross-encoder available on this machine (a folder, or a name in the local
Hugging Face cache), it scores each (query, passage) pair with that cross-encoder. Without one it
says so (a warning, and ``reranker`` in the record) and falls back to the platform embedder's
cosine similarity between the query and each passage, a bi-encoder, not a cross-encoder.

Usage::

    .map(HybridRetriever, {"top_k": 30}).map(Reranker, {"model": "/models/ms-marco-MiniLM-L-6-v2", "top_k": 5})
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sage_platform.dataflow.functions import MapFunction
from sage_platform.dataflow.library._platform import platform_for

log = logging.getLogger(__name__)


class Reranker(MapFunction):
    requires = frozenset({"query", "retrieved"})
    provides = frozenset({"retrieved", "context", "reranker"})
    batch_size = 8

    def open(self) -> None:
        self._top_k: int | None = self.config.get("top_k")
        self._cross_encoder = _load_cross_encoder(self.config.get("model"))
        if self._cross_encoder is not None:
            self.label = f"cross-encoder ({self.config['model']})"
        else:
            shared = {k: v for k, v in self.config.items() if k != "model"}  # model names the cross-encoder here
            self._embedder = platform_for(shared).embedder
            self.label = f"bi-encoder cosine ({self._embedder.model_name}): no cross-encoder model on this machine"
            log.warning("Reranker: %s", self.label)

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0, np.float32)
        if self._cross_encoder is not None:
            return np.asarray(self._cross_encoder.predict([(query, p) for p in passages]), dtype=np.float32)
        vectors = self._embedder.embed([query, *passages])
        return np.asarray(vectors[1:] @ vectors[0], dtype=np.float32)

    def execute(self, data: Any) -> Any:
        hits = list(data["retrieved"])
        scores = self.scores(str(data["query"]), [h["text"] for h in hits])
        order = np.argsort(-scores, kind="stable")[: self._top_k]
        ranked = [{**hits[i], "score": float(scores[i])} for i in order]
        return {**data, "retrieved": ranked, "context": [h["text"] for h in ranked], "reranker": self.label}


def _load_cross_encoder(model: str | None) -> Any:
    if not model:
        return None
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(model, local_files_only=True)
    except OSError:  # not a folder and not in the local cache: this machine has no such model
        return None
