"""Answer generation: an OpenAI-compatible LLM, or the extractive answerer when none is configured."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sage_platform.config import Settings
from sage_platform.embeddings.base import Embedder
from sage_platform.generation.extractive import ExtractiveAnswerer
from sage_platform.generation.llm import LLMAnswerer
from sage_platform.retrieval.types import Hit


class Answerer(Protocol):
    name: str

    @property
    def label(self) -> str: ...

    def answer_many(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[str]: ...


def answerer_from_settings(settings: Settings, embedder: Embedder) -> Answerer:
    if settings.llm_configured:
        key = settings.default_llm_api_key.get_secret_value() if settings.default_llm_api_key else None
        return LLMAnswerer(
            model=settings.default_llm_model_name or "",
            base_url=settings.default_llm_api_base_url,
            api_key=key,
            max_tokens=settings.default_llm_max_tokens,
            temperature=settings.default_llm_temperature,
        )
    return ExtractiveAnswerer(embedder)


__all__ = ["Answerer", "ExtractiveAnswerer", "LLMAnswerer", "answerer_from_settings"]
