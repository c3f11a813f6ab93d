"""The agent server on a real loopback port (uvicorn), a scripted LLM stand-in, a real MCP server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from sage_platform.config import Settings
from sage_platform.server import create_app
from tests.chat_stub import ChatStub, chat_stub
from tests.mcp_tool_server import free_port, mcp_http_server, uvicorn_thread


@dataclass
class AgentClient:
    url: str
    settings: Settings
    app: Any
    headers: dict[str, str]

    def stream(self, content: str, **body: Any) -> list[dict[str, Any]]:
        response = self.post_stream(content, **body)
        assert response.status_code == 200, response.text
        return [json.loads(line) for line in response.iter_lines() if line]

    def post_stream(self, content: str, **body: Any) -> requests.Response:
        payload = {"messages": [{"role": "user", "content": content}], **body}
        return requests.post(f"{self.url}/api/stream", json=payload, headers=self.headers, stream=True, timeout=60)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers, timeout=30, **kwargs)

    def post(self, path: str, payload: Any = None, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, json=payload, headers=self.headers, timeout=60, **kwargs)

    def put(self, path: str, payload: Any = None) -> requests.Response:
        return requests.put(self.url + path, json=payload, headers=self.headers, timeout=60)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, headers=self.headers, timeout=60)

    @property
    def state(self) -> Any:
        return self.app.state.sage


@pytest.fixture
def llm() -> Iterator[ChatStub]:
    with chat_stub() as stub:
        yield stub


@pytest.fixture
def start_server(env: dict[str, str], llm: ChatStub) -> Iterator[Callable[..., AgentClient]]:
    """``start_server(**settings)``: an agent server on its own port, stopped after the test."""
    stack: list[Any] = []

    def start(headers: dict[str, str] | None = None, **overrides: Any) -> AgentClient:
        values: dict[str, Any] = {
            "default_llm_model_name": "stub-model",
            "default_llm_api_base_url": llm.url,
            "default_llm_max_retries": 0,
            **overrides,
        }
        settings = Settings(**values)
        app = create_app(settings)
        context = uvicorn_thread(app, free_port())
        url = context.__enter__()
        stack.append(context)
        return AgentClient(url, settings, app, headers or {})

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def mcp_url() -> Iterator[str]:
    """A real MCP tool server (add, echo, explode, meet) on loopback."""
    with mcp_http_server() as url:
        yield url


@pytest.fixture
def server(start_server: Callable[..., AgentClient]) -> AgentClient:
    return start_server()


@contextmanager
def reading(response: requests.Response) -> Iterator[Iterator[dict[str, Any]]]:
    """Messages of a streaming response, one at a time; the connection closes when the block ends."""
    try:
        yield (json.loads(line) for line in response.iter_lines() if line)
    finally:
        response.close()


def types_of(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]
