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
    return LLMAnswerer.from_settings(settings) or ExtractiveAnswerer(embedder)


__all__ = ["Answerer", "ExtractiveAnswerer", "LLMAnswerer", "answerer_from_settings"]
