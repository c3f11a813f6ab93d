"""Generation's LLM client comes from the shared factory and honours every SAGE_DEFAULT_LLM_* setting."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from sage_platform.config import Settings
from sage_platform.generation import LLMAnswerer, answerer_from_settings
from sage_platform.retrieval.types import Hit
from tests.chat_stub import ChatStub, chat_stub

HITS = [Hit(chunk_id="a.md:0", doc_id="a.md", score=1.0, text="Backups run nightly.")]


@pytest.fixture
def stub() -> Iterator[ChatStub]:
    with chat_stub() as running:
        yield running


def answerer(stub: ChatStub, **settings: object) -> LLMAnswerer:
    found = LLMAnswerer.from_settings(
        Settings(default_llm_model_name="stub-model", default_llm_api_base_url=stub.url, **settings)  # type: ignore[arg-type]
    )
    assert found is not None
    return found


def test_sampling_settings_reach_the_model(stub: ChatStub) -> None:
    llm = answerer(stub, default_llm_top_p=0.7, default_llm_temperature=0.3, default_llm_max_tokens=64)
    assert llm.answer("When do backups run?", HITS).startswith("SUMMARY(")
    sent = stub.requests[-1]
    assert (sent["model"], sent["top_p"], sent["temperature"], sent["max_tokens"]) == ("stub-model", 0.7, 0.3, 64)


def test_retries_follow_the_setting(stub: ChatStub) -> None:
    assert answerer(stub, default_llm_max_retries=2).answer("[[status:503x2]] q1", HITS).startswith("SUMMARY(")
    assert len(stub.requests) == 3  # two 503s retried, then the answer
    with pytest.raises(openai.InternalServerError):
        answerer(stub, default_llm_max_retries=1).answer("[[status:503x5]] q2", HITS)
    assert len(stub.requests) == 3 + 2


def test_the_timeout_follows_the_setting(stub: ChatStub) -> None:
    with pytest.raises(openai.APITimeoutError):
        answerer(stub, default_llm_timeout=0.3, default_llm_max_retries=0).answer("[[slow:2]] q", HITS)


def test_without_an_llm_the_extractive_answerer_answers() -> None:
    assert LLMAnswerer.from_settings(Settings()) is None
    assert answerer_from_settings(Settings(), embedder=None).name == "extractive"  # type: ignore[arg-type]
