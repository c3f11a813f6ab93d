"""The chat page in real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
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


SCREENSHOTS = os.environ.get("SAGE_TEST_SCREENSHOTS")  # read at import: the env fixture clears SAGE_*


def _ask(page: Any, text: str, finals: int) -> None:
    page.fill("#question", text)
    page.click("#send")
    page.wait_for_function(f"document.querySelectorAll('.message.assistant.final').length === {finals}")
    page.wait_for_function("!document.querySelector('#send').disabled")


def test_the_console_switches_sessions_files_and_stops_runs(
    server: AgentClient, llm: ChatStub, page: Any, tmp_path: Any
) -> None:
    page.goto(server.url + "/")
    _ask(page, "first session question", 1)
    first = page.locator("#session").inner_text().removeprefix("session ")
    page.click("#new-session")
    _ask(page, "second session question", 1)
    second = page.locator("#session").inner_text().removeprefix("session ")
    page.wait_for_function("document.querySelectorAll('#session-list li').length === 2")

    page.click(f"li[data-session='{first}'] .session-open")  # resume the first: its history comes back
    page.wait_for_function(f"document.querySelector('#session').textContent === 'session {first}'")
    assert "first session question" in page.locator("#log").inner_text()
    assert "second session question" not in page.locator("#log").inner_text()
    page.once("dialog", lambda dialog: dialog.accept("Renamed first"))
    page.click(f"li[data-session='{first}'] button[title^='rename']")
    page.wait_for_function("document.querySelector('#session-list').textContent.includes('Renamed first')")

    notes = tmp_path / "notes.txt"
    notes.write_text("tea, bread, apples\n")
    page.set_input_files("#upload", str(notes))
    page.wait_for_selector("#file-list li")
    assert "notes.txt v1 (19 bytes)" in page.locator("#file-list").inner_text()
    with page.expect_download() as download:
        page.click("#file-list button[title='download notes.txt']")
    assert download.value.suggested_filename == "notes.txt"
    assert Path(download.value.path()).read_bytes() == b"tea, bread, apples\n"
    page.click("#file-list button[title='delete notes.txt']")
    page.wait_for_function("document.querySelectorAll('#file-list li').length === 0")

    page.fill("#question", "[[hold]] a long answer")
    page.click("#send")
    assert llm.holding.wait(15)
    page.keyboard.press("Escape")  # the keyboard stops a run
    page.wait_for_selector(".message.error")
    assert "stream stopped" in page.locator(".message.error").last.inner_text()
    llm.release()

    page.click(f"li[data-session='{second}'] button[title^='delete']")
    page.wait_for_function("document.querySelectorAll('#session-list li').length === 1")
    assert [s["session_id"] for s in server.get("/api/sessions").json()] == [first]

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if SCREENSHOTS:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=f"{SCREENSHOTS}/console.png")


def test_only_admins_get_the_tool_server_panel(start_server, mcp_url: str, page: Any) -> None:  # type: ignore[no-untyped-def]
    server: AgentClient = start_server(api_keys="alice=key-alice", admin_keys="key-root")
    page.goto(server.url + "/")
    page.fill("#api-key", "key-alice")
    page.dispatch_event("#api-key", "change")
    page.click("[data-panel='tools-panel']")
    page.wait_for_selector("#tools-forbidden:not([hidden])")
    assert page.locator("#tools-forbidden").inner_text().startswith("403: tool servers are managed by admins")
    assert page.locator("#tools-admin").is_hidden()

    page.fill("#api-key", "key-root")
    page.dispatch_event("#api-key", "change")
    page.wait_for_function("document.querySelector('#tools-forbidden').hidden")  # the panel follows the key
    page.click("[data-panel='tools-panel']")
    page.fill("#server-name", "calc")
    page.fill("#server-url", mcp_url)
    page.click("#add-server button")
    page.wait_for_function("document.querySelector('#server-list').textContent.includes('calc: connected (4 tools)')")
    page.click("#server-list button[title='toggle calc']")
    page.wait_for_function("document.querySelector('#server-list').textContent.includes('calc: disabled')")


def test_the_memory_view_finds_the_users_memories(server: AgentClient, page: Any) -> None:
    page.goto(server.url + "/")
    _ask(page, '[[tool:remember {"text": "Ada prefers green tea in the morning"}]] remember this', 1)
    page.click("[data-panel='memory-panel']")
    page.fill("#memory-query", "what does Ada drink?")
    page.click("#memory-search button")
    page.wait_for_selector("#memory-list li")
    assert "Ada prefers green tea in the morning" in page.locator("#memory-list li").first.inner_text()


def test_plans_show_and_task_sessions_link_to_their_dagster_run(
    server: AgentClient, llm: ChatStub, page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from dagster import DagsterInstance

    from sage_platform.jobs import streaming_agent_job
    from sage_platform.resources import SageResource

    page.goto(server.url + "/")
    page.select_option("#mode", "multi")  # the mode selector reaches the request
    plan = json.dumps({"analysis": "two parts", "steps": ["look it up", "sum it up"]})
    _ask(page, f"[[plan {plan}]] plan this", 1)
    assert page.locator("details.plan summary").inner_text() == "📋 plan: two parts"
    assert page.locator("details.stage summary").all_inner_texts() == ["✓ step 1 completed", "✓ step 2 completed"]

    monkeypatch.setenv("SAGE_DEFAULT_LLM_MODEL_NAME", "stub-model")
    monkeypatch.setenv("SAGE_DEFAULT_LLM_API_BASE_URL", llm.url)
    task = server.post("/api/tasks", {"messages": [{"role": "user", "content": "a task"}], "session_id": "tasked"})
    results: list[Any] = []

    def run_job() -> None:  # in a thread of its own: Playwright's loop runs in this one
        results.append(streaming_agent_job.execute_in_process(
            run_config={"ops": {"run_agent_task": {"config": {"task_id": task.json()["task_id"]}}}},
            instance=DagsterInstance.ephemeral(), resources={"sage": SageResource()},
        ))  # fmt: skip

    worker = threading.Thread(target=run_job)
    worker.start()
    worker.join(120)
    [result] = results
    page.reload()
    link = page.locator("li[data-session='tasked'] a.dagster-run")
    link.wait_for()
    assert link.get_attribute("href") == f"http://127.0.0.1:3000/runs/{result.run_id}"


def test_with_tracing_each_answer_links_to_its_trace(start_server, page: Any) -> None:  # type: ignore[no-untyped-def]
    from tests._http import serve

    class Receiver(BaseHTTPRequestHandler):  # an OTLP endpoint that takes the spans
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serve(Receiver) as otlp:
        server: AgentClient = start_server(trace_jaeger_url=otlp, trace_ui_url="http://jaeger.example:16686/")
        page.goto(server.url + "/")
        _ask(page, "traced question", 1)
        link = page.locator("a.trace-link")
        link.wait_for()
        stored = server.get(f"/api/stream/resume/{page.locator('#session').inner_text().removeprefix('session ')}")
        trace_id = [json.loads(line) for line in stored.text.splitlines()][-1]["trace_id"]
        assert link.get_attribute("href") == f"http://jaeger.example:16686/trace/{trace_id}"
