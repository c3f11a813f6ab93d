"""The server's LLM key never leaves for a caller's URL; upstream errors are kinds, not echoed text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from sage_platform.agent.llm import LLMClients, LLMOverrideRefused
from sage_platform.agent.requests import LLMModelConfig
from sage_platform.config import Settings
from tests.chat_stub import ChatStub, chat_stub
from tests.server.conftest import AgentClient

SERVER_KEY = "sk-server-secret-0123456789"


@pytest.fixture
def elsewhere() -> Iterator[ChatStub]:
    """A second OpenAI-compatible endpoint: the one a caller names."""
    with chat_stub() as stub:
        yield stub


def _lines(response) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.iter_lines() if line]


def test_a_callers_base_url_gets_neither_the_servers_key_nor_a_request(
    start_server, llm: ChatStub, elsewhere: ChatStub
) -> None:  # type: ignore[no-untyped-def]
    plain: AgentClient = start_server(default_llm_api_key=SERVER_KEY, api_keys="bob=key-bob")
    bob = AgentClient(plain.url, plain.settings, plain.app, {"Authorization": "Bearer key-bob"})
    refused = bob.post_stream("hi", llm_model_config={"base_url": elsewhere.url, "api_key": "sk-bob"})
    assert refused.status_code == 403 and "SAGE_LLM_ALLOWED_BASE_URLS" in refused.json()["detail"]

    allowed: AgentClient = start_server(default_llm_api_key=SERVER_KEY, llm_allowed_base_urls=elsewhere.url,
                                        api_keys="alice=key-alice")  # fmt: skip
    alice = AgentClient(allowed.url, allowed.settings, allowed.app, {"Authorization": "Bearer key-alice"})
    keyless = alice.post_stream("hi", llm_model_config={"base_url": elsewhere.url})
    assert keyless.status_code == 403 and "needs its own api_key" in keyless.json()["detail"]
    assert elsewhere.requests == []

    own = _lines(alice.post_stream("hi", llm_model_config={"base_url": elsewhere.url, "api_key": "sk-alice-own"}))
    assert own[-1]["type"] == "stream_end" and any(m["type"] == "final_answer" for m in own)
    assert elsewhere.authorizations == ["Bearer sk-alice-own"]
    assert all(SERVER_KEY not in a for a in elsewhere.authorizations)
    _lines(alice.post_stream("hi"))  # the configured endpoint still gets the server's key
    assert llm.authorizations[-1] == f"Bearer {SERVER_KEY}"


def test_upstream_error_text_is_not_echoed(start_server) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server()
    messages = _lines(server.post_stream("[[status:500]] fail"))
    errors = [m["content"] for m in messages if m["type"] == "error"]
    assert errors == ["the language model answered HTTP 500"]
    assert "db-7.internal" not in json.dumps(messages)  # the upstream's own words stay on the server


def test_a_truncated_stream_is_an_error_and_never_an_answer(start_server) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server()
    response = server.post_stream("[[truncate]] tell me everything")
    session = response.headers["X-Session-Id"]
    messages = _lines(response)
    assert [m["type"] for m in messages][-2:] == ["error", "stream_end"]
    assert "cut off" in messages[-2]["content"] and messages[-1]["saved"] is True
    assert not any(m["type"] == "final_answer" for m in messages)
    history = server.get(f"/api/sessions/{session}/messages").json()["messages"]
    assert [m["role"] for m in history] == ["user"]  # the question is kept; no half answer is
    assert server.state.store.last_run(session).status == "incomplete"


def test_llm_clients_are_a_bounded_lru_that_closes_what_it_evicts() -> None:
    async def run() -> tuple[int, list[bool]]:
        clients = LLMClients(Settings(default_llm_model_name="m", default_llm_api_base_url="http://127.0.0.1:1/v1"),
                             max_clients=4)  # fmt: skip
        made = []
        for port in range(300):
            choice = clients.resolve(LLMModelConfig(base_url=f"http://127.0.0.1:{1000 + port}/v1", api_key="k"),
                                     admin=True)  # fmt: skip
            made.append(clients.client(choice))
        await asyncio.gather(*clients._closing, return_exceptions=True)
        open_count = clients.open_clients
        closed = [c.is_closed() for c in made]
        await clients.close()
        return open_count, closed

    open_count, closed = asyncio.run(run())
    assert open_count == 4
    assert closed[:-4] == [True] * 296 and closed[-4:] == [False] * 4


def test_a_non_admin_cannot_name_an_unlisted_base_url() -> None:
    clients = LLMClients(Settings(default_llm_model_name="m", default_llm_api_base_url="http://127.0.0.1:1/v1"))
    with pytest.raises(LLMOverrideRefused, match="SAGE_LLM_ALLOWED_BASE_URLS"):
        clients.resolve(LLMModelConfig(base_url="http://attacker.example/v1", api_key="k"))
    same = clients.resolve(LLMModelConfig(base_url="http://127.0.0.1:1/v1/"))  # the configured one, spelled with /
    assert same.base_url == "http://127.0.0.1:1/v1/"
