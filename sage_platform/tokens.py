"""Token counts with a real tokenizer: the local embedder's WordPiece vocabulary, offline.

An approximation of any chat model's own count (which is not available offline), used for context
budgets by the agent server and the memory server.

Usage::

    counter = TokenCounter.local()
    counter.count("hello world")                                  # 2
    counter.count_message({"role": "user", "content": "hi"})      # 5: the text plus per-message overhead
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

MESSAGE_OVERHEAD = 4  # role and separators, as chat templates add them


class TokenCounter:
    def __init__(self, backend: Any) -> None:
        self._backend = backend

    @classmethod
    @lru_cache(maxsize=1)
    def local(cls) -> TokenCounter:
        from tokenizers import Tokenizer

        from sage_platform.embeddings.local import resolve_model_dir

        backend = Tokenizer.from_file(str(resolve_model_dir("all-MiniLM-L6-v2")[0] / "tokenizer.json"))
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
