"""Answers from any OpenAI-compatible chat completions API, grounded in the retrieved chunks.

Usage::

    answerer = LLMAnswerer(model="qwen2.5", base_url="http://127.0.0.1:8000/v1", api_key=None)
    answers = answerer.answer_many(["What is Sage?"], [hits])
"""

from __future__ import annotations

from collections.abc import Sequence

from sage_platform.generation.prompts import rag_messages
from sage_platform.retrieval.types import Hit


class LLMAnswerer:
    name = "llm"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        timeout: float = 120.0,
    ) -> None:
        from openai import OpenAI

        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._client = OpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=3, timeout=timeout)

    @property
    def label(self) -> str:
        return f"llm ({self.model})"

    def answer_many(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[str]:
        return [self.answer(q, h) for q, h in zip(questions, hits, strict=True)]

    def answer(self, question: str, hits: Sequence[Hit]) -> str:
        response = self._client.chat.completions.create(
            model=self.model,
            messages=rag_messages(question, hits),  # type: ignore[arg-type]
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        return (response.choices[0].message.content or "").strip()
