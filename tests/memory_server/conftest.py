"""The memory server on a real loopback port, and the official MCP client talking to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from mcp import ClientSession

from sage_platform.config import Settings
from sage_platform.memory_server import create_http_app
from sage_platform.memory_server.hooks import memory_session
from sage_platform.memory_server.server import MemoryService
from tests.mcp_tool_server import free_port, uvicorn_thread

TOKEN = "test-token-1"
T = TypeVar("T")


@pytest.fixture
def memory(settings: Settings) -> MemoryService:
    return MemoryService.from_settings(settings)


@pytest.fixture
def mcp_url(env: dict[str, str], memory: MemoryService, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SAGE_MCP_TOKENS", f"{TOKEN},another-token")
    with uvicorn_thread(create_http_app(Settings(), memory), free_port()) as base:
        yield base + "/mcp"


def with_client(url: str, body: Callable[[ClientSession], Awaitable[T]], token: str | None = TOKEN) -> T:
    async def run() -> T:
        async with memory_session(url, token) as session:
            return await body(session)

    return asyncio.run(run())


def payload(result: Any) -> Any:
    """A tool result's JSON (structured content when present, else the text)."""
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) and len(content) == 1 else content
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)
