"""The OpenAI-compatible chat client of the agent loop: streaming, function tools, retries.

One ``ChatEndpoint`` (an aiohttp connection pool) per endpoint and key, shared by every request, in a
bounded LRU that closes what it evicts. It retries 429 and 5xx answers with exponential backoff
before the stream starts. A stream that ends without ``[DONE]`` or a ``finish_reason`` is an error.

A request may point ``llm_model_config.base_url`` elsewhere only if ``SAGE_LLM_ALLOWED_BASE_URLS`` lists
it (admins: anywhere), and must then bring its own ``api_key``: the server's key goes to the configured
endpoint alone.

Usage::

    llm = LLMClients(settings)
    async for event in llm.stream(llm.resolve(None), messages, tools):
        ...   # TextDelta | ReasoningDelta | ToolCallsDone | Usage
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sage_platform.agent.chat_http import ChatEndpoint
from sage_platform.agent.requests import LLMModelConfig
from sage_platform.config import Settings
from sage_platform.llm_clients import ModelChoice


class LLMNotConfigured(ValueError):
    pass


class LLMOverrideRefused(PermissionError):
    """A request asked for a model endpoint it may not use; the message says why."""


class LLMStreamError(RuntimeError):
    """The model's server reported an error inside the event stream."""


class LLMStreamTruncated(LLMStreamError):
    """The event stream ended with neither ``[DONE]`` nor a ``finish_reason``: the answer is incomplete."""


MAX_CLIENTS = 32  # distinct (endpoint, key) pairs kept open; the least recently used is closed


def _same_url(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/") == (b or "").rstrip("/")


@dataclass
class TextDelta:
    text: str


@dataclass
class ReasoningDelta:
    text: str


@dataclass
class ToolCallsDone:
    calls: list[dict[str, Any]]  # OpenAI shape: id, type, function {name, arguments}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class LLMClients:
    def __init__(self, settings: Settings, max_clients: int = MAX_CLIENTS) -> None:
        self.settings = settings
        self.max_clients = max_clients
        self._clients: OrderedDict[tuple[str | None, str | None], ChatEndpoint] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def _penalty(self) -> dict[str, float]:
        penalty = self.settings.default_llm_presence_penalty
        return {"presence_penalty": penalty} if penalty else {}

    def resolve(self, override: LLMModelConfig | None, *, admin: bool = False) -> ModelChoice:
        s, o = self.settings, override or LLMModelConfig()
        default_key = s.default_llm_api_key.get_secret_value() if s.default_llm_api_key else None
        model = o.model or s.default_llm_model_name
        base_url = o.base_url or s.default_llm_api_base_url
        if o.base_url and not _same_url(o.base_url, s.default_llm_api_base_url):
            allowed = [u.rstrip("/") for u in s.llm_allowed_base_url_list]
            if not admin and o.base_url.rstrip("/") not in allowed:
                raise LLMOverrideRefused(
                    f"llm_model_config.base_url {o.base_url!r} is not allowed: an operator must list it in "
                    "SAGE_LLM_ALLOWED_BASE_URLS"
                )
            if o.api_key is None:
                raise LLMOverrideRefused(
                    "llm_model_config.base_url other than the server's needs its own api_key: the server's key "
                    "is sent only to SAGE_DEFAULT_LLM_API_BASE_URL"
                )
            default_key = None
        if not model or not (base_url or o.api_key or default_key):
            raise LLMNotConfigured(
                "no LLM configured: set SAGE_DEFAULT_LLM_MODEL_NAME and SAGE_DEFAULT_LLM_API_BASE_URL "
                "(or pass llm_model_config)"
            )
        return ModelChoice(
            model=model,
            base_url=base_url,
            api_key=o.api_key.get_secret_value() if o.api_key else default_key,
            max_tokens=o.max_tokens or s.default_llm_max_tokens,
            temperature=s.default_llm_temperature if o.temperature is None else o.temperature,
            top_p=s.default_llm_top_p if o.top_p is None else o.top_p,
        )

    def client(self, choice: ModelChoice) -> ChatEndpoint:
        key = (choice.base_url, choice.api_key)
        if key in self._clients:
            self._clients.move_to_end(key)
        else:
            self._clients[key] = ChatEndpoint(
                choice.base_url,
                api_key=choice.api_key,
                timeout=self.settings.default_llm_timeout,
                max_retries=self.settings.default_llm_max_retries,
            )
            while len(self._clients) > self.max_clients:
                _, evicted = self._clients.popitem(last=False)
                closing = asyncio.get_running_loop().create_task(evicted.close())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        return self._clients[key]

    @property
    def open_clients(self) -> int:
        return len(self._clients)

    async def stream(
        self, choice: ModelChoice, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[TextDelta | ReasoningDelta | ToolCallsDone | Usage]:
        body: dict[str, Any] = {
            "model": choice.model,
            "messages": messages,
            "max_tokens": choice.max_tokens,
            "temperature": choice.temperature,
            "top_p": choice.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._penalty,
        }
        if tools:
            body |= {"tools": tools, "parallel_tool_calls": True}
        calls: dict[int, _PartialCall] = {}
        finished = False
        async with self.client(choice).stream(body) as lines:
            async for line in lines:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    finished = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    raise LLMStreamError(str(chunk["error"].get("message", chunk["error"])))
                usage = chunk.get("usage")
                if usage:
                    yield Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
                if not chunk.get("choices"):
                    continue
                finished = finished or bool(chunk["choices"][0].get("finish_reason"))
                delta = chunk["choices"][0].get("delta") or {}
                if delta.get("reasoning_content"):
                    yield ReasoningDelta(delta["reasoning_content"])
                if delta.get("content"):
                    yield TextDelta(delta["content"])
                for call in delta.get("tool_calls") or []:
                    partial = calls.setdefault(call.get("index", 0), _PartialCall())
                    partial.id = call.get("id") or partial.id
                    function = call.get("function") or {}
                    partial.name = function.get("name") or partial.name
                    partial.arguments.append(function.get("arguments") or "")
        if not finished:
            raise LLMStreamTruncated("the model's stream ended early (no finish_reason and no [DONE])")
        if calls:
            yield ToolCallsDone(
                [
                    {
                        "id": p.id or f"call_{i}",
                        "type": "function",
                        "function": {"name": p.name, "arguments": "".join(p.arguments) or "{}"},
                    }
                    for i, p in sorted(calls.items())
                ]  # fmt: skip
            )

    async def complete(self, choice: ModelChoice, messages: list[dict[str, Any]]) -> str:
        body = {"model": choice.model, "messages": messages, "max_tokens": choice.max_tokens, "temperature": 0.0,
                **self._penalty}  # fmt: skip
        answer = await self.client(choice).complete(body)
        return str(answer["choices"][0]["message"].get("content") or "").strip()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


def parse_arguments(raw: str) -> dict[str, Any]:
    """A tool call's JSON arguments; anything else is an error for the tool result, not a crash."""
    value = json.loads(raw or "{}")
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
    return value
