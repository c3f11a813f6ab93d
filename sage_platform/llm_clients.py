"""The model choice every OpenAI-compatible call uses, and the SDK client of batch generation.

The agent server's streaming calls go through ``sage_platform.agent.chat_http`` (aiohttp, no SDK on
the hot path); both take their model, key, timeout and retries from here.

Every client honours the ``SAGE_DEFAULT_LLM_*`` settings: timeout, retries (429/5xx, with backoff,
before any output), and the sampling defaults carried by ``ModelChoice``.

Usage::

    choice = default_model_choice(settings)          # None when no LLM is configured
    client = sync_client(settings, choice.base_url, choice.api_key)
    client.chat.completions.create(model=choice.model, top_p=choice.top_p, ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sage_platform.config import Settings

if TYPE_CHECKING:
    from openai import OpenAI


@dataclass(frozen=True)
class ModelChoice:
    """Which model, where, and how to sample: the defaults, or a request's allowed overrides."""

    model: str
    base_url: str | None
    api_key: str | None
    max_tokens: int
    temperature: float
    top_p: float


def default_model_choice(settings: Settings) -> ModelChoice | None:
    if not settings.llm_configured:
        return None
    return ModelChoice(
        model=settings.default_llm_model_name or "",
        base_url=settings.default_llm_api_base_url,
        api_key=settings.default_llm_api_key.get_secret_value() if settings.default_llm_api_key else None,
        max_tokens=settings.default_llm_max_tokens,
        temperature=settings.default_llm_temperature,
        top_p=settings.default_llm_top_p,
    )


def sync_client(settings: Settings, base_url: str | None, api_key: str | None) -> OpenAI:
    from openai import OpenAI

    return OpenAI(
        base_url=base_url,
        api_key=api_key or "unused",  # local servers take any key; the SDK insists on one
        max_retries=settings.default_llm_max_retries,
        timeout=settings.default_llm_timeout,
    )
