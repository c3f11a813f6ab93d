"""The chat page in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chat_stub import ChatStub
from tests.server.conftest import AgentClient

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (scripts/install-test-tools)"
)


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_the_page_streams_the_answer_and_folds_tool_calls(server: AgentClient, llm: ChatStub, page: Any) -> None:
    page.goto(server.url + "/")
    page.fill("#question", '[[tool:remember {"text": "Ada likes tea"}]] [[hold]] remember that')
    page.click("#send")
    # Text is on the page while the model is still streaming: rendered as it arrives.
    page.wait_for_selector("details.tool-call")
    assert llm.holding.wait(15)
    streaming = page.locator(".message.assistant").last
    streaming.wait_for()
    page.wait_for_function("document.querySelector('.message.assistant').textContent.includes('results:')")
    assert page.locator(".message.assistant.final").count() == 0
    llm.release()
    page.wait_for_selector(".message.assistant.final")

    assert "remember" in page.locator("details.tool-call summary").first.inner_text()
    result = page.locator("details.tool-result")
    assert "✓ remember result" in result.first.inner_text()
    assert result.first.get_attribute("open") is None  # folded until clicked
    assert "Ada likes tea" in page.locator(".message.assistant.final").inner_text()
    session = page.locator("#session").inner_text()
    assert session.startswith("session ")

    # The session is kept: the next question goes to the same one.
    page.fill("#question", "and now?")
    page.click("#send")
    page.wait_for_function("document.querySelectorAll('.message.assistant.final').length === 2")
    # The answer shows before the turn is saved; stream_end (the send button back on) comes after.
    page.wait_for_function("!document.querySelector('#send').disabled")
    sessions = server.get("/api/sessions").json()
    assert len(sessions) == 1 and session == f"session {sessions[0]['session_id']}"
    assert sessions[0]["message_count"] == 6  # two questions, a tool call, its result, two answers


def test_with_no_llm_the_page_answers_from_the_knowledge_base_and_says_so(
    start_server, pg_server: str, tmp_path, llm: ChatStub, page: Any
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import indexed_platform, pubmedqa_items

    (tmp_path / "kb").mkdir()
    platform = indexed_platform(pg_server, tmp_path / "kb", 20)
    server: AgentClient = start_server(database_url=platform.settings.database_url, default_llm_model_name=None,
                                       default_llm_api_base_url=None)  # fmt: skip
    pmid, item = pubmedqa_items(20)[4]
    page.goto(server.url + "/")
    page.fill("#question", item["QUESTION"])
    page.click("#send")
    page.wait_for_selector(".message.assistant.final")
    label = page.locator(".mode-label").inner_text()
    assert (
        label.startswith("Retrieval only: no language model is configured") and "SAGE_DEFAULT_LLM_MODEL_NAME" in label
    )
    assert f"[{pmid}]" in page.locator(".message.assistant.final").inner_text()
    assert pmid in page.locator("#citation-list").inner_text()  # the knowledge_search hits, listed
    assert llm.requests == []
    platform.db.close()
