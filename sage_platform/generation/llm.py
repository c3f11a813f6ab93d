"""Answers from any OpenAI-compatible chat completions API, grounded in the retrieved chunks.

Usage::

    answerer = LLMAnswerer.from_settings(settings)     # None when no LLM is configured
    answers = answerer.answer_many(["What is Sage?"], [hits])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sage_platform.config import Settings
from sage_platform.generation.prompts import rag_messages
from sage_platform.llm_clients import ModelChoice, default_model_choice, sync_client
from sage_platform.retrieval.types import Hit

if TYPE_CHECKING:
    from openai import OpenAI


class LLMAnswerer:
    name = "llm"

    def __init__(self, choice: ModelChoice, client: OpenAI) -> None:
        self.choice = choice
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMAnswerer | None:
        choice = default_model_choice(settings)
        if choice is None:
            return None
        return cls(choice, sync_client(settings, choice.base_url, choice.api_key))

    @property
    def label(self) -> str:
        return f"llm ({self.choice.model})"

    def answer_many(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[str]:
        return [self.answer(q, h) for q, h in zip(questions, hits, strict=True)]

    def answer(self, question: str, hits: Sequence[Hit]) -> str:
        response = self._client.chat.completions.create(
            model=self.choice.model,
            messages=rag_messages(question, hits),  # type: ignore[arg-type]
            max_tokens=self.choice.max_tokens,
            temperature=self.choice.temperature,
            top_p=self.choice.top_p,
        )
        return (response.choices[0].message.content or "").strip()
