"""One OpenAI-compatible chat endpoint over aiohttp: the agent's hot path, without an SDK in between.

Profiling the server under load put the OpenAI SDK's request building (typed transforms, header
merging, its httpx layer over aiohttp) at a quarter of the CPU of a whole run. This client sends the
body as it is (it is already in the API's shape), retries ``429`` and ``5xx`` answers and refused
connections with exponential backoff (honouring ``Retry-After``) before the stream starts, and hands
the event stream's lines over raw.

Usage::

    endpoint = ChatEndpoint("http://127.0.0.1:8000/v1", api_key="sk-…", timeout=60, max_retries=2)
    async with endpoint.stream({"model": "m", "messages": [...], "stream": True}) as lines:
        async for line in lines:
            ...                                   # b'data: {...}'
    await endpoint.close()
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

RETRIED = frozenset({408, 409, 429, 500, 502, 503, 504})
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0


class LLMHTTPError(RuntimeError):
    """The model's server answered an error status (after the retries it allows)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the language model answered HTTP {status_code}")
        self.status_code = status_code


class LLMUnreachable(ConnectionError):
    """The model's server could not be reached (refused, unresolvable, reset before answering)."""


class LLMTimeout(TimeoutError):
    """The model's server did not answer, or stopped sending, within the timeout."""


class ChatEndpoint:
    def __init__(self, base_url: str | None, *, api_key: str | None, timeout: float, max_retries: int) -> None:
        self.url = (base_url or "https://api.openai.com/v1").rstrip("/") + "/chat/completions"
        self.max_retries = max_retries
        self._headers = {"Authorization": f"Bearer {api_key or 'unused'}", "Content-Type": "application/json"}
        # sock_read: the longest silence inside a stream, not the length of the whole answer.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this endpoint's client was closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    @asynccontextmanager
    async def stream(self, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[bytes]]:
        """The answer's lines as they arrive (an event stream when ``body`` asks ``stream``)."""
        response = await self._send(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        try:
            yield _lines(response)
        finally:
            response.release()

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.stream(body) as lines:
            text = b"".join([line async for line in lines])
        answer: dict[str, Any] = json.loads(text)
        return answer

    async def _send(self, data: bytes) -> aiohttp.ClientResponse:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = await self._client().post(self.url, data=data, headers=self._headers)
            except (TimeoutError, aiohttp.ServerTimeoutError) as error:
                if last:
                    raise LLMTimeout("the language model did not answer in time") from error
                await asyncio.sleep(_backoff(attempt))  # the retry's own wait
                continue
            except aiohttp.ClientConnectionError as error:
                if last:
                    raise LLMUnreachable("the language model cannot be reached") from error
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status < 400:
                return response
            retry_after = response.headers.get("Retry-After")
            response.release()
            if last or response.status not in RETRIED:
                raise LLMHTTPError(response.status)
            await asyncio.sleep(_backoff(attempt, retry_after))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def is_closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


async def split_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of ``chunks`` (``\\n`` or ``\\r\\n`` ended; the last may be unended), whatever the chunks'
    boundaries: split here as each read arrives, since aiohttp's ``readline`` costs more per line."""
    rest = b""
    async for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if rest:
        yield rest.rstrip(b"\r")


def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    return split_lines(_reads(response))


async def _reads(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ServerTimeoutError) as error:
        raise LLMTimeout("the language model stopped sending (timeout)") from error
    except aiohttp.ClientPayloadError as error:
        raise LLMUnreachable("the language model's connection broke mid-answer") from error


def _backoff(attempt: int, retry_after: str | None = None) -> float:
    """Exponential with jitter, as the OpenAI SDK does; a server's ``Retry-After`` (seconds) wins."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    return float(min(FIRST_BACKOFF_S * 2**attempt, MAX_BACKOFF_S) * (1 - 0.25 * random.random()))
